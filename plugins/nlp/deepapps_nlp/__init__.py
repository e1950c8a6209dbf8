"""deepapps_nlp: the nlp plugin of deepapps. Its hooks live in :mod:`deepapps_nlp.plugin`."""
