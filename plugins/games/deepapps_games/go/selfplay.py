"""Self-play game generation and match play (many games at once, one network call per batch).

Self-play plays ``concurrent`` games side by side and gathers leaves from all of their searches
into a single forward pass. Playout cap randomisation (KataGo): each move is a *full* search
(``visits``, with Dirichlet noise, recorded as a training target) with probability ``full_prob``,
else a *fast* search (``fast_visits``, no noise, not recorded). ``full_prob=1`` turns it off.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .board import BLACK, Board
from .mcts import MCTS, SearchResult, check_visits
from .net import features


@dataclass
class SelfPlayConfig:
    size: int = 7
    komi: float = 7.5
    visits: int = 96
    fast_visits: int = 24
    full_prob: float = 0.25
    temperature_moves: int = 8  # sample with temperature 1 for these moves, then `final_temperature`
    final_temperature: float = 0.2
    concurrent: int = 8
    leaves_per_game: int = 4
    c_puct: float = 1.5
    max_moves: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Samples:
    """Training positions: input planes (uint8), visit policies, outcomes, final ownership."""

    x: np.ndarray  # (B, C, N, N) uint8
    pi: np.ndarray  # (B, N*N+1) float32
    z: np.ndarray  # (B,) float32, side to move's view
    own: np.ndarray  # (B, N*N) int8, side to move's view

    @staticmethod
    def concat(items: list[Samples]) -> Samples:
        return Samples(
            np.concatenate([s.x for s in items]),
            np.concatenate([s.pi for s in items]),
            np.concatenate([s.z for s in items]),
            np.concatenate([s.own for s in items]),
        )

    def __len__(self) -> int:
        return len(self.z)


class _Game:
    def __init__(self, cfg: SelfPlayConfig, evaluate, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.board = Board(cfg.size, komi=cfg.komi, max_moves=cfg.max_moves)
        self.mcts = MCTS(evaluate, c_puct=cfg.c_puct, batch=cfg.leaves_per_game, rng=rng)
        self.mcts.set_root(self.board)
        self.rng = rng
        self.records: list[tuple[np.ndarray, np.ndarray, int]] = []
        self.moves: list[int] = []
        self._new_move()

    def _new_move(self) -> None:
        self.full = self.cfg.full_prob >= 1 or self.rng.random() < self.cfg.full_prob
        self.target = self.cfg.visits if self.full else self.cfg.fast_visits
        self.noised = False

    def step(self) -> list:
        """Leaves this game needs evaluated (empty when its current search is done)."""
        root = self.mcts.root
        if root.expanded and self.full and not self.noised:
            self.mcts.add_noise()
            self.noised = True
        if root.expanded and root.visits >= self.target:
            return []
        return self.mcts.collect(self.cfg.leaves_per_game)

    def searched(self) -> bool:
        root = self.mcts.root
        return root.expanded and (root.visits >= self.target) and (not self.full or self.noised)

    def play(self) -> None:
        res = self.mcts.result()
        if self.full:
            self.records.append((features(self.board), res.policy, self.board.to_play))
        temp = 1.0 if self.board.moves < self.cfg.temperature_moves else self.cfg.final_temperature
        move = res.sample(temp, self.rng)
        self.board.play(move)
        self.moves.append(move)
        self.mcts.advance(move)
        self._new_move()

    def samples(self) -> Samples:
        n = self.board.n
        winner = self.board.winner()
        owner = np.asarray(self.board.area(), dtype=np.int8)
        if not self.records:
            c = features(self.board).shape[0]
            return Samples(
                np.zeros((0, c, n, n), np.uint8),
                np.zeros((0, n * n + 1), np.float32),
                np.zeros(0, np.float32),
                np.zeros((0, n * n), np.int8),
            )
        x = np.stack([r[0] for r in self.records]).astype(np.uint8)
        pi = np.stack([r[1] for r in self.records]).astype(np.float32)
        colors = np.array([r[2] for r in self.records])
        z = np.where(colors == winner, 1.0, -1.0).astype(np.float32)
        own = (owner[None, :] * colors[:, None]).astype(np.int8)
        return Samples(x, pi, z, own)


def selfplay(evaluator, cfg: SelfPlayConfig, games: int, seed: int = 0) -> tuple[Samples, dict[str, Any]]:
    """Play ``games`` self-play games, ``cfg.concurrent`` at a time; returns samples and stats."""
    rng = np.random.default_rng(seed)
    active: list[_Game] = []
    started = finished = 0
    out: list[Samples] = []
    lengths: list[int] = []
    black_wins = 0
    while finished < games:
        while len(active) < cfg.concurrent and started < games:
            active.append(_Game(cfg, evaluator, rng))
            started += 1
        batch: list = []
        owners: list[tuple[_Game, int]] = []
        for g in active:
            pend = g.step()
            if pend:
                owners.append((g, len(pend)))
                batch.extend(pend)
        if batch:
            boards = [leaf.board for _, leaf in batch]
            masks = [b.candidate_moves() for b in boards]
            priors, values = evaluator(boards, masks)
            i = 0
            for g, k in owners:
                g.mcts.backup(batch[i : i + k], priors[i : i + k], values[i : i + k], masks[i : i + k])
                i += k
        still: list[_Game] = []
        for g in active:
            if g.searched():
                g.play()
            if g.board.is_over():
                out.append(g.samples())
                lengths.append(g.board.moves)
                black_wins += g.board.winner() == BLACK
                finished += 1
            else:
                still.append(g)
        active = still
    stats = {
        "games": finished,
        "positions": int(sum(len(s) for s in out)),
        "mean_length": float(np.mean(lengths)) if lengths else 0.0,
        "black_win_rate": black_wins / max(finished, 1),
    }
    return Samples.concat(out), stats


# ---------------------------------------------------------------------------------------------
# players and matches


class RandomPlayer:
    """Uniformly random legal moves that do not fill its own eyes; passes only when no such move
    is left (the usual "random player" of Go programs; filling its own eyes would only make games
    longer and easier to win)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def reset(self) -> None:
        pass

    def genmove(self, board: Board) -> int:
        legal = [m for m in board.legal_moves()[:-1] if not board.is_eye(m, board.to_play)]
        return self.rng.choice(legal) if legal else board.pass_move

    def observe(self, board: Board, move: int) -> None:
        pass


class MCTSPlayer:
    """A network + PUCT search player; ``temperature_moves`` opening moves are sampled (variety)."""

    def __init__(
        self,
        evaluator,
        visits: int = 200,
        batch: int = 8,
        temperature_moves: int = 0,
        c_puct: float = 1.5,
        seed: int = 0,
        name: str = "mcts",
    ) -> None:
        self.evaluator = evaluator
        self.visits = check_visits(visits)
        self.temperature_moves = temperature_moves
        self.rng = np.random.default_rng(seed)
        self.mcts = MCTS(evaluator, c_puct=c_puct, batch=batch, rng=self.rng)
        self.name = name
        self.last: SearchResult | None = None

    def reset(self) -> None:
        self.mcts.root = None

    def analyse(self, board: Board, visits: int | None = None) -> SearchResult:
        """Search ``board`` with ``visits`` (default: the player's; at most ``mcts.MAX_VISITS``)."""
        visits = self.visits if visits is None else check_visits(visits)
        root = self.mcts.root
        reuse = root is not None and root.board.stones == board.stones and root.board.to_play == board.to_play
        if reuse and root.board.ko != board.ko:
            reuse = False
        self.last = self.mcts.search(board, visits, noise=False, reuse=reuse)
        return self.last

    def genmove(self, board: Board) -> int:
        if board.is_over():
            return board.pass_move
        res = self.analyse(board)
        temp = 1.0 if board.moves < self.temperature_moves else 0.0
        return res.sample(temp, self.rng)

    def observe(self, board: Board, move: int) -> None:
        """Called after any move (ours or the opponent's) was played from ``board``."""
        root = self.mcts.root
        if root is not None and root.board.stones == board.stones and root.expanded:
            self.mcts.advance(move)
        else:
            self.mcts.root = None


def play_game(black, white, size: int, komi: float, max_moves: int | None = None) -> tuple[int, Board]:
    """One game between two players; returns (winner colour, final board)."""
    board = Board(size, komi=komi, max_moves=max_moves)
    for p in (black, white):
        p.reset()
    while not board.is_over():
        player = black if board.to_play == BLACK else white
        move = player.genmove(board)
        before = board.copy()
        board.play(move)
        black.observe(before, move)
        white.observe(before, move)
    return board.winner(), board


def match(a, b, games: int, size: int, komi: float, progress_desc: str | None = None) -> dict[str, Any]:
    """``games`` games of ``a`` vs ``b``, alternating colours (a is black in even games)."""
    wins = 0
    wins_black = wins_white = 0
    it = range(games)
    if progress_desc:
        from deepapps.runtime import progress

        it = progress(it, total=games, desc=progress_desc, unit="game")
    for g in it:
        a_black = g % 2 == 0
        winner, _ = play_game(a, b, size, komi) if a_black else play_game(b, a, size, komi)
        won = (winner == BLACK) == a_black
        wins += won
        if a_black:
            wins_black += won
        else:
            wins_white += won
    lo, hi = wilson(wins, games)
    return {
        "games": games,
        "wins": wins,
        "win_rate": wins / max(games, 1),
        "ci95": [round(lo, 4), round(hi, 4)],
        "wins_as_black": wins_black,
        "wins_as_white": wins_white,
    }


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a win rate (95% by default)."""
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def elo_from_rate(rate: float, games: int) -> float:
    """Elo difference implied by a win rate (clamped half a game from 0% and 100%)."""
    eps = 0.5 / max(games, 1)
    r = min(max(rate, eps), 1 - eps)
    return 400.0 * math.log10(r / (1 - r))


# ---------------------------------------------------------------------------------------------
# self-play on Ray: versioned weights, worker actors, the chunk feed


@dataclass(frozen=True)
class Weights:
    """One network version for the self-play workers: safetensors bytes (no pickle) and its version.

    The trainer puts each version into Ray's object store once (:meth:`RaySelfPlay.publish`);
    a worker fetches it only when the version it is told about differs from the one it holds.
    """

    version: int
    blob: bytes

    @staticmethod
    def pack(net, version: int) -> Weights:
        import json

        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        return Weights(version, save(state, metadata={"config": json.dumps(net.config.to_dict())}))

    def unpack(self):
        """The network (eval mode, CPU) this version holds."""
        import json

        from safetensors.torch import load

        from .net import GoNet, NetConfig

        # safetensors: an 8-byte little-endian header length, then the JSON header with our metadata
        header = self.blob[8 : 8 + int.from_bytes(self.blob[:8], "little")]
        config = json.loads(json.loads(header)["__metadata__"]["config"])
        net = GoNet(NetConfig(**config))
        net.load_state_dict(load(self.blob))
        return net.eval()


class SelfPlayWorker:
    """A self-play worker (a Ray actor): plays chunks of games with the newest weights it was told of."""

    def __init__(self, cfg: SelfPlayConfig, games_per_chunk: int, worker_id: int) -> None:
        import os

        from deepapps.runtime import set_threads

        set_threads(1)
        os.environ.setdefault("DEEPAPPS_NO_PROGRESS", "1")
        self.cfg, self.games, self.worker_id = cfg, games_per_chunk, worker_id
        self.version, self.evaluator = -1, None

    def play(self, version: int, weights_box: list, seed: int) -> tuple[Samples, dict[str, Any]]:
        """One chunk at ``seed`` (the same samples :func:`selfplay` gives in-process for that seed)."""
        import time

        if version != self.version:
            import ray

            from .net import Evaluator

            self.evaluator = Evaluator(ray.get(weights_box[0]).unpack())
            self.version = version
        t0, c0 = time.perf_counter(), time.process_time()
        samples, stats = selfplay(self.evaluator, self.cfg, self.games, seed=seed)
        stats.update(
            seconds=time.perf_counter() - t0,
            cpu_seconds=time.process_time() - c0,
            generation=version,
            worker=self.worker_id,
            seed=seed,
        )
        return samples, stats


def chunk_seed(first_seed: int, chunk: int) -> int:
    """Seed of the ``chunk``-th chunk of a run, whichever worker plays it."""
    return first_seed * 100_003 + chunk


class RaySelfPlay:
    """``workers`` self-play actors on Ray fed with versioned weights; :meth:`poll` returns a finished chunk.

    Each actor has one chunk in flight; a finished one is handed back and the actor gets the next
    chunk number with the newest weights. A worker process that dies is restarted by Ray and its
    chunk replayed (same seed). ``session`` is an open :func:`deepapps.runtime.cluster.ray_session`
    (this object opens one when None and closes what it opened).
    """

    def __init__(
        self,
        cfg: SelfPlayConfig,
        net,
        version: int,
        workers: int,
        games_per_chunk: int,
        first_seed: int,
        ray_address: str | None = None,
        session=None,
    ) -> None:
        from deepapps.runtime.cluster import ray_session

        self._own = session is None
        self._session = ray_session(ray_address, num_cpus=workers) if self._own else session
        self.ray = self._session.__enter__() if self._own else session
        self.first_seed, self.next_chunk = first_seed, 0
        self.publish(net, version)
        actor = self.ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=2)(SelfPlayWorker)
        self.actors = [actor.remote(cfg, games_per_chunk, i) for i in range(workers)]
        self.in_flight: dict[Any, Any] = {}
        for a in self.actors:
            self._submit(a)

    def publish(self, net, version: int) -> None:
        """Broadcast a new network version: the next chunk of every worker uses it."""
        self.version = version
        self.weights_ref = self.ray.put(Weights.pack(net, version))

    def _submit(self, actor) -> None:
        seed = chunk_seed(self.first_seed, self.next_chunk)
        self.next_chunk += 1
        self.in_flight[actor.play.remote(self.version, [self.weights_ref], seed)] = actor

    def poll(self, timeout: float = 0.05) -> tuple[Samples, dict[str, Any]] | None:
        ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=timeout)
        if not ready:
            return None
        actor = self.in_flight.pop(ready[0])
        self._submit(actor)
        return self.ray.get(ready[0])

    def close(self) -> None:
        """Stop the workers (a chunk in progress is dropped) and Ray if this object started it."""
        for a in self.actors:
            self.ray.kill(a)
        self.in_flight.clear()
        if self._own:
            self._session.__exit__(None, None, None)
