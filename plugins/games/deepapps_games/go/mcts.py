"""PUCT Monte-Carlo tree search with batched leaf evaluation and virtual loss.

One search collects up to ``batch`` leaves before calling the network once for all of them: each
descent adds a virtual loss along its path so the next descent explores elsewhere. The search is
split into :meth:`MCTS.collect` / :meth:`MCTS.backup` so a caller can also batch leaves across many
concurrent games (self-play does). Values are in [-1, 1] from the side to move's view.

One search (a move, a GTP command, an analysis request) is capped at :data:`MAX_VISITS` visits:
the tree keeps every node, so memory and time grow with visits (about 10 KB and 1 ms per visit
on 9×9 on one CPU core, twice that on 19×19).
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .board import Board

MAX_VISITS = 10_000


def check_visits(visits: object, where: str = "visits") -> int:
    """``visits`` as a search size from 1 to :data:`MAX_VISITS`, else an InputError saying so."""
    from deepapps.errors import InputError

    if isinstance(visits, bool) or not isinstance(visits, (int, np.integer)) or not 1 <= visits <= MAX_VISITS:
        raise InputError(f"{where} must be an integer from 1 to {MAX_VISITS:,}, got {visits!r}")
    return int(visits)


# (boards, candidate moves of each board as index lists or arrays) -> (priors over those moves, values)
EvalFn = Callable[[list[Board], list[Sequence[int]]], tuple[list[np.ndarray], np.ndarray]]


class Node:
    """One search position. Per-move statistics are plain Python lists indexed like ``moves``
    (scalar updates on lists are several times cheaper than on numpy arrays, and a descent touches
    one entry per level); :attr:`P` is the numpy view of the priors."""

    __slots__ = (
        "board",
        "moves",
        "_P",
        "N",
        "W",
        "children",
        "n_sum",
        "visited",
        "cp",
        "order",
        "next_new",
        "visits",
        "value_sum",
        "pending",
        "terminal",
    )

    def __init__(self, board: Board) -> None:
        self.board = board
        self.moves: list[int] | None = None  # legal moves (flat indices, pass last)
        self._P: np.ndarray | None = None
        self.N: list[int] = []  # visits per move, virtual visits included
        self.W: list[float] = []  # value sums per move (virtual losses included)
        self.children: list[Node | None] = []
        self.n_sum = 0  # sum(N)
        self.visited: list[int] = []  # indices with N > 0, ascending
        self.cp: list[float] | None = None  # c_puct * P, built at the first descent through the node
        self.order: list[int] = []  # indices by descending c_puct * P (stable)
        self.next_new = 0  # position in ``order`` before which every move has N > 0
        self.visits = 0
        self.value_sum = 0.0
        self.pending = False
        self.terminal: float | None = None
        if board.is_over():
            self.terminal = 1.0 if board.winner() == board.to_play else -1.0

    @property
    def expanded(self) -> bool:
        return self.moves is not None

    @property
    def P(self) -> np.ndarray | None:
        """Priors over ``moves`` (float64); assigning new priors (noise) refreshes the selection data."""
        if self._P is not None and self._P.dtype != np.float64:
            self._P = self._P.astype(np.float64)
        return self._P

    @P.setter
    def P(self, priors: np.ndarray) -> None:
        self._P = np.asarray(priors, dtype=np.float64)
        self.cp = None

    def expand(self, priors: np.ndarray, moves: np.ndarray | list[int]) -> None:
        k = len(moves)
        self.moves = moves.tolist() if isinstance(moves, np.ndarray) else list(moves)
        # kept as given (float32 from the evaluator) and converted to float64 when first needed: many
        # leaves are never descended through
        self._P = priors if isinstance(priors, np.ndarray) else np.asarray(priors, dtype=np.float64)
        self.N = [0] * k
        self.W = [0.0] * k
        self.children = [None] * k

    def prepare(self, c_puct: float) -> list[float]:
        """Selection data: ``c_puct * P`` as Python floats (the same doubles as the numpy product)
        and the moves ordered by it, largest first, ties by index (a stable sort)."""
        cp = [c_puct * p for p in self._P.tolist()]
        self.order = sorted(range(len(cp)), key=cp.__getitem__, reverse=True)
        self.next_new = 0
        self.cp = cp
        return cp


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
        max_collisions: int | None = None,
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
        self.max_collisions = max_collisions  # per batch; None: as many as the batch size

    # tree management ------------------------------------------------------------
    def set_root(self, board: Board) -> None:
        self.root = Node(board.copy())

    def advance(self, move: int) -> None:
        """Keep the subtree under ``move`` as the new root (tree reuse)."""
        root = self.root
        if root is None:
            return
        child = None
        if root.moves is not None and move in root.moves:
            child = root.children[root.moves.index(move)]
        if child is None or child.pending:
            b = root.board.copy()
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
        """Walk down by PUCT, adding a virtual loss at every step, to a leaf (unexpanded or terminal).

        score(a) = Q(a) + c·P(a)·sqrt(ΣN + 1)/(1 + N(a)), where Q(a) = W(a)/N(a), or for unvisited
        moves the first-play urgency (the node's mean value - ``fpu_reduction``). All unvisited moves
        share that Q and the factor sqrt(ΣN + 1), so the best of them is the one with the largest
        prior: only visited moves are scored one by one, the unvisited ones through a pointer into
        the moves sorted by prior. Same scores, in the same floating-point operations, and the same
        lowest-index tie-break as an argmax over every move.
        """
        node = self.root
        path: list[tuple[Node, int]] = []
        c = self.c_puct
        fpu_reduction = self.fpu_reduction
        sqrt = math.sqrt
        while node.moves is not None and node.terminal is None:
            N = node.N
            cp = node.cp
            if cp is None and not node.n_sum and c > 0:
                # first descent through the node: nothing visited, the largest prior wins
                a = int(node._P.argmax())
            else:
                if cp is None:
                    cp = node.prepare(c)
                W = node.W
                sq = sqrt(node.n_sum + 1.0)
                a = -1
                best = -math.inf
                for i in node.visited:  # ascending, so ties keep the lowest index
                    n = N[i]
                    score = W[i] / n + cp[i] * (sq / (1.0 + n))
                    if score > best:
                        best = score
                        a = i
                order = node.order
                j = node.next_new
                k = len(order)
                while j < k and N[order[j]]:
                    j += 1
                node.next_new = j
                if j < k:
                    i = order[j]
                    fpu = node.value_sum / node.visits - fpu_reduction if node.visits > 0 else 0.0
                    score = fpu + cp[i] * sq
                    if score > best or (score == best and i < a):
                        a = i
            # virtual loss: pretend this branch just lost
            if not N[a]:
                insort(node.visited, a)
            N[a] += 1
            node.W[a] -= 1.0
            node.n_sum += 1
            path.append((node, a))
            child = node.children[a]
            if child is None:
                b = node.board.copy()
                b.play(node.moves[a])
                child = Node(b)
                node.children[a] = child
            node = child
        return path, node

    def _backup(self, path: list[tuple[Node, int]], leaf: Node, value: float) -> None:
        leaf.visits += 1
        leaf.value_sum += value
        # every move (pass included) hands the turn over, so the view flips at each step up
        v = -value
        for node, a in reversed(path):
            node.W[a] += 1.0 + v  # remove the virtual loss, add the real value
            node.visits += 1
            node.value_sum += v
            v = -v
        # N already counted by the virtual visit

    def _undo_virtual(self, path: list[tuple[Node, int]]) -> None:
        for node, a in path:
            node.N[a] -= 1
            node.W[a] += 1.0
            node.n_sum -= 1
            if not node.N[a]:
                node.visited.remove(a)
                if node.cp is not None:
                    node.next_new = min(node.next_new, node.order.index(a))

    # batched search ----------------------------------------------------------------
    def collect(self, k: int | None = None) -> list[tuple[list[tuple[Node, int]], Node]]:
        """Descend until ``k`` leaves are collected; terminal leaves are backed up at once, the rest
        returned.

        A descent that ends on a leaf already waiting for the network (a collision) keeps its
        virtual loss until the batch is complete, so the following descents are steered away from
        that path instead of ending the batch. After ``max_collisions`` collisions (default ``k``)
        the batch is returned as it is; the virtual losses of colliding descents are then undone.
        """
        k = self.batch if k is None else k
        pending: list[tuple[list[tuple[Node, int]], Node]] = []
        if self.root is not None and not self.root.expanded and self.root.terminal is None:
            if not self.root.pending:
                self.root.pending = True
                return [([], self.root)]
            return []
        select = self._select
        collided: list[list[tuple[Node, int]]] = []
        limit = self.max_collisions if self.max_collisions is not None else k
        done = 0
        while done < k:
            path, leaf = select()
            if leaf.terminal is not None:
                self._backup(path, leaf, leaf.terminal)
                done += 1
                continue
            if leaf.pending:
                self.collisions += 1
                collided.append(path)
                if len(collided) > limit:
                    break
                continue
            leaf.pending = True
            pending.append((path, leaf))
            done += 1
        for path in reversed(collided):
            self._undo_virtual(path)
        return pending

    def backup(
        self,
        pending: list[tuple[list[tuple[Node, int]], Node]],
        priors: list[np.ndarray],
        values: np.ndarray,
        masks: list,
    ) -> None:
        """Expand each pending leaf with its priors over ``masks`` (legal moves) and back up its value."""
        backup = self._backup
        for (path, leaf), p, v, m in zip(pending, priors, np.asarray(values).tolist(), masks, strict=True):
            leaf.pending = False
            if leaf.moves is None:
                leaf.expand(p, m)
            backup(path, leaf, v)

    def evaluate_pending(self, pending: list[tuple[list[tuple[Node, int]], Node]]) -> None:
        if not pending:
            return
        boards = [leaf.board for _, leaf in pending]
        masks = [b.candidate_moves() for b in boards]
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
        N = np.asarray(root.N, dtype=np.float64)
        W = np.asarray(root.W, dtype=np.float64)
        moves = np.asarray(root.moves, dtype=np.int64)
        q = np.where(N > 0, W / np.maximum(N, 1.0), 0.0)
        policy = np.zeros(n * n + 1, dtype=np.float32)
        if N.sum() > 0:
            policy[moves] = N / N.sum()
        value = root.value_sum / root.visits if root.visits else 0.0
        return SearchResult(
            moves=moves,
            visits=N,
            q=q,
            prior=root.P.copy(),
            value=float(value),
            total_visits=int(N.sum()),
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
