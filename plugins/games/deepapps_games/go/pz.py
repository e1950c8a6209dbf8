"""Playing inside pettingzoo's ``go_v5`` environment.

The agent is stateless: it rebuilds the position from the observation (plane 1 = its own stones,
plane 0 = the opponent's, planes 2.. = earlier positions, plane 16 = 1 when it plays white; the
go_v5 docstring says otherwise, the code does this), infers the ko point from the action mask,
searches, and returns an action that the mask allows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .board import BLACK, EMPTY, WHITE, Board
from .mcts import MCTS


def board_from_observation(obs: dict[str, Any], komi: float = 7.5) -> Board:
    """Our Board (stones, side to move, history, ko) from a go_v5 observation dict."""
    planes = np.asarray(obs["observation"])
    n = planes.shape[0]
    me = WHITE if planes[0, 0, 16] else BLACK
    b = Board(n, komi=komi)
    b.to_play = me

    def stones_at(k: int) -> list[int]:
        # history step k: the mover of that step is the opponent when k is even
        mover = -me if k % 2 == 0 else me
        mover_plane, other_plane = planes[:, :, 2 * k], planes[:, :, 2 * k + 1]
        s = np.zeros((n, n), dtype=np.int64)
        s[mover_plane.astype(bool)] = mover
        s[other_plane.astype(bool)] = -mover
        return [int(v) for v in s.ravel()]

    b.stones = stones_at(0)
    b.history = tuple(tuple(stones_at(k)) for k in range(1, 1 + Board.HISTORY))
    b.moves = int(sum(1 for v in b.stones if v != EMPTY))
    mask = np.asarray(obs["action_mask"]).astype(bool)
    ours = np.asarray(b.legal_mask())
    extra = np.flatnonzero(ours[:-1] & ~mask[:-1])
    if len(extra) == 1:  # the only empty, non-suicide point the env forbids is the ko point
        b.ko = int(extra[0])
    return b


class PettingZooAgent:
    """``agent.act(observation) -> action`` for go_v5, using the network + PUCT search."""

    def __init__(self, evaluator, visits: int = 100, batch: int = 8, komi: float = 7.5) -> None:
        self.mcts = MCTS(evaluator, batch=batch)
        self.visits = visits
        self.komi = komi

    def act(self, obs: dict[str, Any]) -> int:
        mask = np.asarray(obs["action_mask"]).astype(bool)
        board = board_from_observation(obs, self.komi)
        res = self.mcts.search(board, self.visits)
        order = np.argsort(-res.visits, kind="stable")
        for i in order:
            move = int(res.moves[i])
            if mask[move]:
                return move
        legal = np.flatnonzero(mask)
        return int(legal[0]) if len(legal) else board.pass_move


def play_in_env(
    agent_black, agent_white, size: int = 7, komi: float = 7.5, max_steps: int | None = None
) -> dict[str, Any]:
    """One go_v5 game between two ``act(obs)`` agents through ``env.step``; returns rewards and steps."""
    from pettingzoo.classic import go_v5

    env = go_v5.env(board_size=size, komi=komi)
    env.reset()
    steps = 0
    limit = max_steps or 3 * size * size
    agents = {"black_0": agent_black, "white_0": agent_white}
    rewards: dict[str, float] = {}
    for name in env.agent_iter():
        obs, reward, term, trunc, _ = env.last()
        if term or trunc:
            rewards[name] = float(reward)
            env.step(None)
            continue
        if steps >= limit:
            action = size * size  # pass until the game ends
        else:
            action = agents[name].act(obs)
        assert obs["action_mask"][action] == 1, "agent chose a masked action"
        env.step(action)
        steps += 1
    env.close()
    return {"rewards": rewards, "steps": steps}


class RandomEnvAgent:
    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: dict[str, Any]) -> int:
        legal = np.flatnonzero(obs["action_mask"])
        non_pass = legal[legal < len(obs["action_mask"]) - 1]
        return int(self.rng.choice(non_pass)) if len(non_pass) else int(legal[-1])
