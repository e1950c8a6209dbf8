"""deepapps_robotics: the robotics plugin of deepapps. Its hooks live in :mod:`deepapps_robotics.plugin`."""
