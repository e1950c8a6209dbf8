"""``deepapps bench go``: search speed with batched vs one-leaf evaluation, self-play throughput.

Every figure comes from this run on this machine: the same network searches the same positions
once with ``batch`` leaves per network call and once with one leaf per call. After an untimed
warm-up of every mode, the modes take turns position by position (so a change in machine load
during the run affects them alike); each mode keeps its own search tree and evaluator counters.
Each precision of ``--compare-precisions`` (fp32 and bf16 by default) is measured with one leaf
and with every batch size; ``batched_speedup_best`` compares the fastest batched mode with the
fastest one-leaf mode (on CPUs with bf16 matrix units, bf16 wins batched and fp32 wins one leaf
at a time). The network-speed and self-play figures use the core's ``--precision``.
Scale-out (``--scale-games``, 0 skips): self-play games per hour of warm workers on Ray with 1 and
2 actors (``ray_selfplay_speedup_2_workers``) and, for comparison, on the ``multiprocessing`` spawn
pool that Ray replaced (kept in this module only, for ``ray_overhead_vs_mp_pool_2_workers_pct``).
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
    BENCH_SCALE_CHUNK,
    BENCH_SCALE_GAMES,
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
    scale_games: int = BENCH_SCALE_GAMES,
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
    if scale_games:
        _add_scaling(report, runner, scale_games, BENCH_SCALE_CHUNK)
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


def _selfplay_config(runner, concurrent: int = 8):
    """Self-play settings the model was trained with (the training defaults when it does not say)."""
    from .selfplay import SelfPlayConfig

    tc = runner.meta.get("train_config", {})
    return SelfPlayConfig(
        size=runner.size,
        komi=runner.komi,
        visits=int(tc.get("visits", 96)),
        fast_visits=int(tc.get("fast_visits", 24)),
        full_prob=float(tc.get("full_prob", 0.25)),
        concurrent=concurrent,
    )


def _add_selfplay(report: BenchReport, runner, games: int, threads: int) -> None:
    """Self-play throughput with the settings the model was trained with."""
    from .selfplay import selfplay

    cfg = _selfplay_config(runner)
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


# ---------------------------------------------------------------------------------------------
# scale-out: self-play on Ray with 1 and 2 workers, and the old process pool it replaced


def _add_scaling(report: BenchReport, runner, games: int, chunk: int, rounds: int = 2) -> None:
    """Games/hour of warm self-play workers: Ray with 1 and 2 actors, the old spawn pool with 2.

    All three setups start first and warm up (one untimed chunk per worker: process start,
    imports, weights); then, in each of ``rounds`` rounds, they play the same chunks (seeds) of
    ``chunk`` games one setup after the other (the order reversed every other round), so a
    change in machine load hits them alike. ``cpus_used`` says how many cores a setup really got.
    Idle warm workers wait without using CPU. Ray's own start is reported on its own.
    """
    import os

    cfg = _selfplay_config(runner, concurrent=chunk)
    chunks = max(2, games // chunk)
    load_before = os.getloadavg()[0]
    played, start = _play_setups(runner.net, cfg, chunk, chunks, rounds)
    rate = {
        name: _rate([s for stats, _ in runs for s in stats], sum(dt for _, dt in runs))
        for name, runs in played.items()
    }
    load = f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    measured = (
        f"{rounds} rounds x {chunks * chunk} games in chunks of {chunk}, visits {cfg.visits}/{cfg.fast_visits}, "
        f"warm workers, setups interleaved per round; {load}"
    )
    cpus = {name: _cpus_used(runs) for name, runs in played.items()}
    for w in (1, 2):
        games_h, length = rate[f"ray_{w}"]
        report.add(
            f"ray_selfplay_games_per_hour_{w}_worker{'s' if w > 1 else ''}",
            games_h,
            "games/h",
            measured=measured,
            mean_length=length,
            cpus_used=cpus[f"ray_{w}"],
        )
    per_cpu = {name: _games_per_cpu_hour(runs) for name, runs in played.items()}
    report.add(
        "ray_selfplay_speedup_2_workers",
        round(rate["ray_2"][0] / rate["ray_1"][0], 2),
        "x",
        measured="Ray self-play games/h (wall clock), 2 workers over 1, same chunks",
        ray_start_seconds=round(start, 1),
        # 2 x (games per worker-CPU-hour with 2 workers over that with 1): the speedup when both
        # cores are free; on a shared machine the wall-clock figure also measures other people's load
        by_cpu_time=round(2 * per_cpu["ray_2"] / per_cpu["ray_1"], 2),
    )
    report.add(
        "legacy_mp_pool_selfplay_games_per_hour_2_workers",
        rate["pool_2"][0],
        "games/h",
        measured=f"{measured}; the multiprocessing spawn pool Ray replaced (kept here for this figure)",
        cpus_used=cpus["pool_2"],
    )
    report.add(
        "ray_overhead_vs_mp_pool_2_workers_pct",
        round((rate["pool_2"][0] / rate["ray_2"][0] - 1) * 100, 1),
        "%",
        measured="time per game on Ray over the old pool's, both 2 warm workers, same chunks, minus 1",
        by_cpu_time=round((per_cpu["pool_2"] / per_cpu["ray_2"] - 1) * 100, 1),
    )


def _play_setups(net, cfg, chunk: int, chunks: int, rounds: int) -> tuple[dict[str, list], float]:
    """Per setup, the (chunk stats, seconds) of each round; and how long Ray took to start."""
    from deepapps.runtime.cluster import ray_session

    from .selfplay import chunk_seed

    t0 = time.perf_counter()
    # 1 + 2 actors stay up side by side (3 logical CPUs); only one setup plays at a time
    with ray_session(None, num_cpus=3) as ray:
        start = time.perf_counter() - t0
        setups = {"ray_1": _RaySetup(ray, net, cfg, chunk, 1), "ray_2": _RaySetup(ray, net, cfg, chunk, 2)}
        setups["pool_2"] = _LegacyPoolSetup(net, cfg, chunk, 2)
        played: dict[str, list] = {name: [] for name in setups}
        try:
            for r in range(rounds):
                seeds = [chunk_seed(1, r * chunks + k) for k in range(chunks)]
                # every other round in reverse order: a load change does not always hit the same setup first
                for name in list(setups) if r % 2 == 0 else reversed(list(setups)):
                    played[name].append(setups[name].timed(seeds))
        finally:
            for setup in setups.values():
                setup.close()
    return played, start


def _rate(stats: list[dict[str, Any]], seconds: float) -> tuple[float, float]:
    games = sum(s["games"] for s in stats)
    length = sum(s["mean_length"] * s["games"] for s in stats) / max(games, 1)
    return round(games / seconds * 3600, 1), round(length, 1)


def _cpus_used(runs: list) -> float:
    """Worker CPU-seconds per wall-clock second: the cores a setup really got (2 workers on a
    machine whose other users take one core show about 1.0 here, and no wall-clock speedup)."""
    cpu = sum(s["cpu_seconds"] for chunk_stats, _ in runs for s in chunk_stats)
    return round(cpu / max(sum(dt for _, dt in runs), 1e-9), 2)


def _games_per_cpu_hour(runs: list) -> float:
    """Games per hour of worker CPU time: what each worker did with the CPU it was actually given."""
    stats = [s for chunk_stats, _ in runs for s in chunk_stats]
    return sum(s["games"] for s in stats) / max(sum(s["cpu_seconds"] for s in stats), 1e-9) * 3600


class _RaySetup:
    """``workers`` warm Ray self-play actors; :meth:`timed` deals chunks to whichever is free."""

    def __init__(self, ray, net, cfg, chunk: int, workers: int) -> None:
        from .selfplay import SelfPlayWorker, Weights, chunk_seed

        self.ray = ray
        self.box = [ray.put(Weights.pack(net, 0))]
        self.actors = [ray.remote(num_cpus=1)(SelfPlayWorker).remote(cfg, chunk, i) for i in range(workers)]
        ray.get([a.play.remote(0, self.box, chunk_seed(0, i)) for i, a in enumerate(self.actors)])  # warm-up

    def timed(self, seeds: list[int]) -> tuple[list[dict[str, Any]], float]:
        todo = list(seeds)
        t0 = time.perf_counter()
        in_flight = {a.play.remote(0, self.box, todo.pop(0)): a for a in self.actors[: len(todo)]}
        stats = []
        while in_flight:
            ready, _ = self.ray.wait(list(in_flight), num_returns=1)
            actor = in_flight.pop(ready[0])
            stats.append(self.ray.get(ready[0])[1])
            if todo:
                in_flight[actor.play.remote(0, self.box, todo.pop(0))] = actor
        return stats, time.perf_counter() - t0

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)


class _LegacyPoolSetup:
    """The home-made ``multiprocessing`` spawn pool that Ray replaced (kept only for this comparison)."""

    def __init__(self, net, cfg, chunk: int, workers: int) -> None:
        import multiprocessing as mp

        from .selfplay import Weights, chunk_seed

        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(workers)  # the warm-up chunks wait for each other: one on every worker
        self.pool = ctx.Pool(workers, _legacy_pool_init, (Weights.pack(net, 0).blob, cfg, chunk, barrier))
        self.pool.map(_legacy_pool_warm_up, [chunk_seed(0, i) for i in range(workers)], chunksize=1)

    def timed(self, seeds: list[int]) -> tuple[list[dict[str, Any]], float]:
        t0 = time.perf_counter()
        stats = list(self.pool.imap_unordered(_legacy_pool_play, seeds))
        return stats, time.perf_counter() - t0

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


_LEGACY_WORKER: dict[str, Any] = {}


def _legacy_pool_init(blob: bytes, cfg, chunk: int, barrier) -> None:
    from deepapps.runtime import set_threads

    from .net import Evaluator
    from .selfplay import Weights

    set_threads(1)
    _LEGACY_WORKER.update(
        evaluator=Evaluator(Weights(0, blob).unpack()), cfg=cfg, chunk=chunk, barrier=barrier
    )


def _legacy_pool_play(seed: int) -> dict[str, Any]:
    from .selfplay import selfplay

    w = _LEGACY_WORKER
    c0 = time.process_time()
    stats = selfplay(w["evaluator"], w["cfg"], w["chunk"], seed=seed)[1]
    return {**stats, "cpu_seconds": time.process_time() - c0}


def _legacy_pool_warm_up(seed: int) -> None:
    _legacy_pool_play(seed)
    _LEGACY_WORKER["barrier"].wait(timeout=600)


def _torch_version() -> str:
    import torch

    return torch.__version__
