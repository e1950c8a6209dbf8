"""PUCT Monte-Carlo tree search with batched leaf evaluation and virtual loss.

One search collects up to ``batch`` leaves before calling the network once for all of them: each
descent adds a virtual loss along its path so the next descent explores elsewhere. The search is
split into :meth:`MCTS.collect` / :meth:`MCTS.backup` so a caller can also batch leaves across many
concurrent games (self-play does). Values are in [-1, 1] from the side to move's view.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .board import Board

EvalFn = Callable[[list[Board], list[np.ndarray]], tuple[list[np.ndarray], np.ndarray]]


class Node:
    __slots__ = ("board", "moves", "P", "N", "W", "children", "visits", "value_sum", "pending", "terminal")

    def __init__(self, board: Board) -> None:
        self.board = board
        self.moves: np.ndarray | None = None  # legal moves (flat indices, pass last)
        self.P: np.ndarray | None = None
        self.N: np.ndarray | None = None
        self.W: np.ndarray | None = None
        self.children: dict[int, Node] = {}
        self.visits = 0
        self.value_sum = 0.0
        self.pending = False
        self.terminal: float | None = None
        if board.is_over():
            self.terminal = 1.0 if board.winner() == board.to_play else -1.0

    @property
    def expanded(self) -> bool:
        return self.moves is not None

    def expand(self, priors: np.ndarray, moves: np.ndarray) -> None:
        self.moves = moves
        self.P = priors.astype(np.float64)
        self.N = np.zeros(len(moves), dtype=np.float64)
        self.W = np.zeros(len(moves), dtype=np.float64)


def legal_index(board: Board) -> np.ndarray:
    """The moves a search considers at ``board`` (see :meth:`Board.candidate_moves`)."""
    return np.asarray(board.candidate_moves(), dtype=np.int64)


@dataclass
class SearchResult:
    """What one search found: visits and mean values per root move, and the root's value."""

    moves: np.ndarray
    visits: np.ndarray
    q: np.ndarray
    prior: np.ndarray
    value: float  # root value estimate, side to move's view
    total_visits: int
    n: int
    policy: np.ndarray = field(default_factory=lambda: np.zeros(0))  # N²+1 visit distribution

    def best(self) -> int:
        return int(self.moves[int(np.argmax(self.visits))])

    def sample(self, temperature: float, rng: np.random.Generator) -> int:
        if temperature <= 1e-3:
            return self.best()
        v = self.visits ** (1.0 / temperature)
        if v.sum() <= 0:
            return self.best()
        return int(rng.choice(self.moves, p=v / v.sum()))

    def top(self, k: int = 5) -> list[dict]:
        """The ``k`` most visited moves: GTP name, visits, win probability, prior."""
        from .board import move_to_gtp

        order = np.argsort(-self.visits, kind="stable")[:k]
        return [
            {
                "move": move_to_gtp(int(self.moves[i]), self.n),
                "visits": int(self.visits[i]),
                "winrate": round(float((self.q[i] + 1) / 2), 4),
                "prior": round(float(self.prior[i]), 4),
            }
            for i in order
            if self.visits[i] > 0
        ]


class MCTS:
    """PUCT search over one game tree (reused between moves with :meth:`advance`)."""

    def __init__(
        self,
        evaluate: EvalFn,
        c_puct: float = 1.5,
        batch: int = 8,
        fpu_reduction: float = 0.2,
        dirichlet_total: float = 10.83,
        noise_fraction: float = 0.25,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.evaluate = evaluate
        self.c_puct = c_puct
        self.batch = max(1, int(batch))
        self.fpu_reduction = fpu_reduction
        self.dirichlet_total = dirichlet_total
        self.noise_fraction = noise_fraction
        self.rng = rng or np.random.default_rng()
        self.root: Node | None = None
        self.collisions = 0

    # tree management ------------------------------------------------------------
    def set_root(self, board: Board) -> None:
        self.root = Node(board.copy())

    def advance(self, move: int) -> None:
        """Keep the subtree under ``move`` as the new root (tree reuse)."""
        if self.root is None:
            return
        child = self.root.children.get(move)
        if child is None or child.pending:
            b = self.root.board.copy()
            b.play(move)
            child = Node(b)
        self.root = child

    def add_noise(self) -> None:
        root = self.root
        assert root is not None and root.expanded
        k = len(root.moves)
        if k <= 1 or self.noise_fraction <= 0:
            return
        alpha = self.dirichlet_total / k
        noise = self.rng.dirichlet([alpha] * k)
        root.P = (1 - self.noise_fraction) * root.P + self.noise_fraction * noise

    # one descent -----------------------------------------------------------------
    def _select(self) -> tuple[list[tuple[Node, int]], Node]:
        node = self.root
        path: list[tuple[Node, int]] = []
        c = self.c_puct
        while node.expanded and node.terminal is None:
            N = node.N
            total = N.sum()
            if node.visits > 0:
                fpu = node.value_sum / node.visits - self.fpu_reduction
            else:
                fpu = 0.0
            q = np.where(N > 0, node.W / np.maximum(N, 1.0), fpu)
            u = c * node.P * (math.sqrt(total + 1.0) / (1.0 + N))
            a = int(np.argmax(q + u))
            # virtual loss: pretend this branch just lost
            N[a] += 1.0
            node.W[a] -= 1.0
            path.append((node, a))
            move = int(node.moves[a])
            child = node.children.get(move)
            if child is None:
                b = node.board.copy()
                b.play(move)
                child = Node(b)
                node.children[move] = child
            node = child
        return path, node

    def _backup(self, path: list[tuple[Node, int]], leaf: Node, value: float) -> None:
        leaf.visits += 1
        leaf.value_sum += value
        leaf_color = leaf.board.to_play
        for node, a in reversed(path):
            v = value if node.board.to_play == leaf_color else -value
            node.W[a] += 1.0 + v  # remove the virtual loss, add the real value
            node.visits += 1
            node.value_sum += v
        # N already counted by the virtual visit

    def _undo_virtual(self, path: list[tuple[Node, int]]) -> None:
        for node, a in path:
            node.N[a] -= 1.0
            node.W[a] += 1.0

    # batched search ----------------------------------------------------------------
    def collect(self, k: int | None = None) -> list[tuple[list[tuple[Node, int]], Node]]:
        """Descend up to ``k`` times; terminal leaves are backed up at once, the rest returned."""
        k = self.batch if k is None else k
        pending: list[tuple[list[tuple[Node, int]], Node]] = []
        if self.root is not None and not self.root.expanded and self.root.terminal is None:
            if not self.root.pending:
                self.root.pending = True
                return [([], self.root)]
            return []
        for _ in range(k):
            path, leaf = self._select()
            if leaf.terminal is not None:
                self._backup(path, leaf, leaf.terminal)
                continue
            if leaf.pending:
                self._undo_virtual(path)
                self.collisions += 1
                break
            leaf.pending = True
            pending.append((path, leaf))
        return pending

    def backup(
        self,
        pending: list[tuple[list[tuple[Node, int]], Node]],
        priors: list[np.ndarray],
        values: np.ndarray,
        masks: list[np.ndarray],
    ) -> None:
        """Expand each pending leaf with its priors over ``masks`` (legal moves) and back up its value."""
        for (path, leaf), p, v, m in zip(pending, priors, values, masks, strict=True):
            leaf.pending = False
            if not leaf.expanded:
                leaf.expand(p, m)
            self._backup(path, leaf, float(v))

    def evaluate_pending(self, pending: list[tuple[list[tuple[Node, int]], Node]]) -> None:
        if not pending:
            return
        boards = [leaf.board for _, leaf in pending]
        masks = [legal_index(b) for b in boards]
        priors, values = self.evaluate(boards, masks)
        self.backup(pending, priors, values, masks)

    def run(self, visits: int, batch: int | None = None) -> None:
        """Search until the root has ``visits`` visits (counting visits reused from earlier moves)."""
        assert self.root is not None
        batch = self.batch if batch is None else batch
        guard = 0
        while self.root.visits < visits and self.root.terminal is None:
            need = visits - self.root.visits
            pending = self.collect(min(batch, need))
            self.evaluate_pending(pending)
            guard += 1
            if guard > 20 * visits + 100:  # every descent collided: cannot progress
                break

    def result(self) -> SearchResult:
        root = self.root
        assert root is not None and root.expanded
        n = root.board.n
        q = np.where(root.N > 0, root.W / np.maximum(root.N, 1.0), 0.0)
        policy = np.zeros(n * n + 1, dtype=np.float32)
        if root.N.sum() > 0:
            policy[root.moves] = root.N / root.N.sum()
        value = root.value_sum / root.visits if root.visits else 0.0
        return SearchResult(
            moves=root.moves.copy(),
            visits=root.N.copy(),
            q=q,
            prior=root.P.copy(),
            value=float(value),
            total_visits=int(root.N.sum()),
            n=n,
            policy=policy,
        )

    def search(self, board: Board, visits: int, noise: bool = False, reuse: bool = False) -> SearchResult:
        """A full search from ``board`` (a fresh tree unless ``reuse`` and the root matches)."""
        if not reuse or self.root is None or self.root.board.stones != board.stones:
            self.set_root(board)
        if not self.root.expanded and self.root.terminal is None:
            pending = self.collect(1)
            self.evaluate_pending(pending)
        if noise:
            self.add_noise()
        self.run(visits)
        return self.result()
