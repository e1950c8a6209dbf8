"""deepapps_driving: the driving plugin of deepapps. Its hooks live in :mod:`deepapps_driving.plugin`."""
