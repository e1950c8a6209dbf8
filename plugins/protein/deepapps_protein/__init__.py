"""deepapps_protein: the protein plugin of deepapps. Its hooks live in :mod:`deepapps_protein.plugin`."""
