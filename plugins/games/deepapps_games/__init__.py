"""deepapps_games: AlphaZero-style Go. Hooks live in :mod:`deepapps_games.plugin`.

The public API is imported on first use, so ``import deepapps_games`` stays light::

    from deepapps_games import Board, MCTS, GTPEngine, load_player
"""

from __future__ import annotations

from deepapps.lazy import lazy_exports

__all__ = ["MCTS", "Board", "GTPEngine", "GoNet", "PettingZooAgent", "load_net", "load_player"]

_LAZY = {
    "Board": "deepapps_games.go.board",
    "MCTS": "deepapps_games.go.mcts",
    "GoNet": "deepapps_games.go.net",
    "load_net": "deepapps_games.go.net",
    "GTPEngine": "deepapps_games.go.gtp",
    "load_player": "deepapps_games.go.gtp",
    "PettingZooAgent": "deepapps_games.go.pz",
}

__getattr__ = lazy_exports(__name__, _LAZY)
