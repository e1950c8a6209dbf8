"""The scripted baseline: shortest path to the target, wait for a robot in the way, sidestep when stuck.

It sees the same observation as the learned policy (so they can be compared fairly): for each move
whether the cell is free, whether it shortens the path, and whether a robot stands there, and the
5x5 window of robots. When another robot could be heading for the same cell it yields half the
time (a coin flip breaks the tie that would otherwise repeat forever).
"""

from __future__ import annotations

import numpy as np

PATIENCE = 2  # steps waiting behind a robot before sidestepping
STEPS = ((0, -1), (0, 1), (-1, 0), (1, 0))  # up, down, left, right as (dx, dy)
WINDOW = 2


class ScriptedPolicy:
    """``act(obs_by_agent) -> action_by_agent``; keeps a per-robot wait counter."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.waiting: dict[str, int] = {}

    def reset(self) -> None:
        self.waiting.clear()

    def act(self, observations: dict[str, np.ndarray]) -> dict[str, int]:
        return {agent: self.act_one(agent, obs) for agent, obs in observations.items()}

    def act_one(self, agent: str, obs: np.ndarray) -> int:
        moves = obs[6:18].reshape(4, 3)  # (free, progress, robot) for up, down, left, right
        best = [m for m in range(4) if moves[m, 0] > 0 and moves[m, 1] > 0]
        clear = [m for m in best if moves[m, 2] == 0]
        if clear:
            self.waiting[agent] = 0
            m = int(self.rng.choice(clear))
            if _contested(obs, m) and self.rng.random() < 0.5:
                return 0
            return m + 1
        if not best:
            return 0
        waited = self.waiting.get(agent, 0) + 1
        self.waiting[agent] = waited
        if waited <= PATIENCE:
            return 0
        side = [m for m in range(4) if moves[m, 0] > 0 and moves[m, 2] == 0]
        if not side:
            return 0
        self.waiting[agent] = 0
        return int(self.rng.choice(side)) + 1


def _contested(obs: np.ndarray, move: int) -> bool:
    """Another robot stands next to the cell this move enters (it may be entering it too)."""
    side = 2 * WINDOW + 1
    robots = obs[18 + side * side : 18 + 2 * side * side].reshape(side, side)
    cx, cy = WINDOW + STEPS[move][0], WINDOW + STEPS[move][1]
    for dx, dy in STEPS:
        x, y = cx + dx, cy + dy
        if (x, y) != (WINDOW, WINDOW) and 0 <= x < side and 0 <= y < side and robots[y, x] > 0:
            return True
    return False
