"""``deepapps bench go``: search speed with batched vs one-leaf evaluation, self-play throughput.

Every figure comes from this run on this machine: the same network searches the same positions
once with ``batch`` leaves per network call and once with one leaf per call. After an untimed
warm-up of every mode, the modes take turns position by position (so a change in machine load
during the run affects them alike); each mode keeps its own search tree and evaluator counters.
Each precision of ``--compare-precisions`` (fp32 and bf16 by default) is measured with one leaf
and with every batch size; ``batched_speedup_best`` compares the fastest batched mode with the
fastest one-leaf mode (on CPUs with bf16 matrix units, bf16 wins batched and fp32 wins one leaf
at a time). The network-speed and self-play figures use the core's ``--precision``.
Options: ``deepapps bench go --visits 400 --batch 16,32,64 --compare-precisions fp32 --threads 1``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from deepapps import BenchReport

from ..plugin import (
    BENCH_BATCHES,
    BENCH_POSITIONS,
    BENCH_PRECISIONS,
    BENCH_ROUNDS,
    BENCH_SELFPLAY_GAMES,
    BENCH_THREADS,
    BENCH_VISITS,
)

Mode = tuple[str, int]  # (precision, leaves per network call)


@dataclass
class ModeStats:
    """What one search mode did over the timed rounds."""

    evaluator: Any
    search: Any
    sims: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    best: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sims / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.sims / self.cpu


def bench(
    model: Any,
    device: str = "cpu",
    precision: str = "fp32",
    visits: int = BENCH_VISITS,
    batch: tuple[int, ...] | list[int] = BENCH_BATCHES,
    positions: int = BENCH_POSITIONS,
    rounds: int = BENCH_ROUNDS,
    selfplay_games: int = BENCH_SELFPLAY_GAMES,
    threads: int = BENCH_THREADS,
    compare_precisions: tuple[str, ...] | list[str] = BENCH_PRECISIONS,
) -> BenchReport:
    """The Go bench (see the module docstring); ``model`` is the core's ModelRef."""
    import deepapps
    from deepapps.runtime import set_threads

    from .net import count_params

    set_threads(threads)
    runner = deepapps.load("go", model, device=device, precision=precision)
    size, komi = runner.size, runner.komi
    report = BenchReport(task="go", model=runner.model_name, figures={}, seconds=0.0)
    t_all = time.perf_counter()
    boards = _positions(size, positions, seed=0)
    batches = [int(b) for b in batch]
    precisions = list(dict.fromkeys(compare_precisions)) or ["fp32"]
    modes = [(p, b) for p in precisions for b in [1, *(b for b in batches if b != 1)]]
    stats = _time_search(runner.net, device, boards, modes, visits, rounds)
    measured = f"{positions} positions x {visits} visits x {rounds} rounds, {size}x{size}"
    _add_search_figures(report, stats, len(boards), measured)
    _add_speedups(report, stats, several_precisions=len(precisions) > 1)
    report.add(
        "board_moves_per_s",
        _board_speed(size),
        "moves/s",
        measured="random games incl. legal-move generation",
    )
    for bs, rate in _net_speed(runner.evaluator, boards).items():
        report.add(f"net_positions_per_s_batch{bs}", rate, "positions/s", precision=precision)
    if selfplay_games:
        _add_selfplay(report, runner, selfplay_games, threads)
    report.setup = {
        "size": size,
        "komi": komi,
        "params": count_params(runner.net),
        "visits": visits,
        "positions": positions,
        "rounds": rounds,
        "batches": batches,
        "precisions": precisions,
        "precision": precision,
        "threads": threads,
        "device": device,
        "torch": _torch_version(),
    }
    report.seconds = time.perf_counter() - t_all
    return report


def _positions(size: int, count: int, seed: int) -> list:
    """``count`` positions of growing length, from seeded random play."""
    from .board import Board

    rng = random.Random(seed)
    out = []
    for i in range(count):
        b = Board(size)
        for _ in range((i * 7) % (size * size // 2)):
            moves = b.legal_moves()[:-1]
            if not moves:
                break
            b.play(rng.choice(moves))
        out.append(b)
    return out


def _time_search(
    net, device: str, boards: list, modes: list[Mode], visits: int, rounds: int
) -> dict[Mode, ModeStats]:
    """Search every position in every mode, the modes taking turns position by position, so a
    change of machine load hits them alike; process CPU time is kept too (on a shared machine it
    leaves out time spent descheduled)."""
    from .mcts import MCTS
    from .net import Evaluator

    stats = {}
    for m in modes:
        ev = Evaluator(net, device, precision=m[0])
        stats[m] = ModeStats(evaluator=ev, search=MCTS(ev, batch=m[1]))
        # warm-up (not timed): first network calls and code paths of this mode, then fresh counters
        MCTS(ev, batch=m[1]).search(boards[0], min(visits, 64))
        ev.calls = ev.positions = 0
    for rnd in range(rounds):
        for board in boards:
            for s in stats.values():
                c0, t0 = time.process_time(), time.perf_counter()
                r = s.search.search(board, visits)
                s.seconds += time.perf_counter() - t0
                s.cpu += time.process_time() - c0
                s.sims += r.total_visits
                if rnd == 0:
                    s.best.append(r.best())
    return stats


def _label(m: Mode) -> str:
    """fp32 keeps the plain names of earlier reports."""
    return f"batch{m[1]}" if m[0] == "fp32" else f"{m[0]}_batch{m[1]}"


def _add_search_figures(
    report: BenchReport, stats: dict[Mode, ModeStats], n_boards: int, measured: str
) -> None:
    reference = ("fp32", 1) if ("fp32", 1) in stats else next(iter(stats))
    for m, s in stats.items():
        extra = {}
        if m != reference:
            same = sum(x == y for x, y in zip(s.best, stats[reference].best, strict=True))
            extra[f"same_best_move_as_{_label(reference)}"] = f"{same}/{n_boards}"
        report.add(
            f"mcts_sims_per_s_{_label(m)}",
            round(s.rate, 1),
            "sims/s",
            network_calls=s.evaluator.calls,
            positions_evaluated=s.evaluator.positions,
            collisions=s.search.collisions,
            sims_per_cpu_s=round(s.cpu_rate, 1),
            precision=m[0],
            measured=measured,
            **extra,
        )


def _add_speedups(report: BenchReport, stats: dict[Mode, ModeStats], several_precisions: bool) -> None:
    """Each batched mode against one leaf at the same precision, and the best against the best."""
    batched = [m for m in stats if m[1] != 1]
    for m in batched:
        one = stats[(m[0], 1)]
        report.add(
            f"batched_speedup_{_label(m)}",
            round(stats[m].rate / one.rate, 2),
            "x",
            by_cpu_time=round(stats[m].cpu_rate / one.cpu_rate, 2),
            measured=f"batch {m[1]} vs 1, both {m[0]}, same net, same positions, same run (modes interleaved per position)",
        )
    if several_precisions and batched:
        top = max(batched, key=lambda m: stats[m].rate)
        top1 = max((m for m in stats if m[1] == 1), key=lambda m: stats[m].rate)
        report.add(
            "batched_speedup_best",
            round(stats[top].rate / stats[top1].rate, 2),
            "x",
            by_cpu_time=round(stats[top].cpu_rate / stats[top1].cpu_rate, 2),
            measured=f"fastest batched mode ({_label(top)}) vs fastest one-leaf mode ({_label(top1)}), same net, same run",
        )


def _board_speed(size: int, seconds: float = 1.0) -> float:
    """Moves per second of random games on the pure-Python board (legal-move generation included)."""
    from .board import Board

    rng = random.Random(1)
    t0 = time.perf_counter()
    played = 0
    while time.perf_counter() - t0 < seconds:
        bd = Board(size)
        while not bd.is_over():
            moves = bd.legal_moves()
            bd.play(rng.choice(moves) if len(moves) > 1 and rng.random() > 0.05 else bd.pass_move)
            played += 1
    return round(played / (time.perf_counter() - t0), 1)


def _net_speed(evaluator, boards: list, seconds: float = 1.0) -> dict[int, float]:
    """Positions per second through the network alone, one position and 64 at a time."""
    rates = {}
    for bs in (1, 64):
        xs = (boards * (bs // len(boards) + 1))[:bs]
        evaluator.raw(xs)
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < seconds:
            evaluator.raw(xs)
            n += bs
        rates[bs] = round(n / (time.perf_counter() - t0), 1)
    return rates


def _add_selfplay(report: BenchReport, runner, games: int, threads: int) -> None:
    """Self-play throughput with the settings the model was trained with."""
    from .selfplay import SelfPlayConfig, selfplay

    tc = runner.meta.get("train_config", {})
    cfg = SelfPlayConfig(
        size=runner.size,
        komi=runner.komi,
        visits=int(tc.get("visits", 96)),
        fast_visits=int(tc.get("fast_visits", 24)),
        full_prob=float(tc.get("full_prob", 0.25)),
    )
    t0 = time.perf_counter()
    _, stats = selfplay(runner.evaluator, cfg, games, seed=0)
    dt = time.perf_counter() - t0
    report.add(
        "selfplay_games_per_hour_per_process",
        round(stats["games"] / dt * 3600, 1),
        "games/h",
        measured=f"{stats['games']} games, visits {cfg.visits}/{cfg.fast_visits} p_full {cfg.full_prob}, 1 process, {threads} thread",
        mean_length=stats["mean_length"],
    )


def _torch_version() -> str:
    import torch

    return torch.__version__
