"""deepapps_games: the games plugin of deepapps. Its hooks live in :mod:`deepapps_games.plugin`."""
