"""``deepapps bench go``: search speed with batched vs one-leaf evaluation, self-play throughput.

Every figure comes from this run on this machine: the same network searches the same positions
once with ``batch`` leaves per network call and once with one leaf per call. After an untimed
warm-up of every mode, the modes take turns position by position (so a change in machine load
during the run affects them alike); each mode keeps its own search tree and evaluator counters.
Each precision (``precision="fp32,bf16"`` by default) is measured with one leaf and with every
batch size; ``batched_speedup_best`` compares the fastest batched mode with the fastest one-leaf
mode (on CPUs with bf16 matrix units, bf16 wins batched and fp32 wins one leaf at a time).
Options: ``deepapps bench go --visits 400 --batch 16,32,64 --precision fp32 --threads 1``.
"""

from __future__ import annotations

import random
import time
from typing import Any

from deepapps import BenchReport


def _positions(size: int, count: int, seed: int) -> list:
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


def bench(
    model: Any = None,
    device: str = "cpu",
    visits: int = 400,
    batch: int | str | list[int] = (16, 32, 64),
    positions: int = 4,
    rounds: int = 2,
    selfplay_games: int = 8,
    threads: int = 1,
    precision: str | list[str] = "fp32,bf16",
    **_: Any,
) -> BenchReport:
    import torch

    from .board import Board
    from .mcts import MCTS
    from .net import Evaluator, count_params
    from .runner import load_model, model_defaults
    from .selfplay import SelfPlayConfig, selfplay

    torch.set_num_threads(threads)
    name = getattr(model, "name", model) or "go-7x7"
    net, meta = load_model(name, device="cpu" if device == "auto" else device)
    size, komi = model_defaults(meta)
    report = BenchReport(task="go", model=str(name), figures={}, seconds=0.0)
    t_all = time.perf_counter()
    boards = _positions(size, positions, seed=0)
    if isinstance(batch, str):
        batch = [int(b) for b in batch.split(",") if b.strip()]
    batches = [int(b) for b in (batch if isinstance(batch, (list, tuple)) else [batch])]
    if isinstance(precision, str):
        precision = [p.strip() for p in precision.split(",") if p.strip()]
    precisions = list(dict.fromkeys(precision)) or ["fp32"]
    # a mode is (precision, leaves per network call); every precision gets its one-leaf baseline
    modes = [(p, b) for p in precisions for b in [1, *(b for b in batches if b != 1)]]
    evals = {m: Evaluator(net, device, precision=m[0]) for m in modes}
    searches = {m: MCTS(evals[m], batch=m[1]) for m in modes}
    # warm-up (not timed): first network calls and code paths of every mode, then fresh counters
    for m in modes:
        MCTS(evals[m], batch=m[1]).search(boards[0], min(visits, 64))
        evals[m].calls = evals[m].positions = 0
    # the modes take turns position by position, so a change of machine load hits them alike;
    # process CPU time is kept too (on a shared machine it leaves out time spent descheduled)
    sims = dict.fromkeys(modes, 0)
    seconds = dict.fromkeys(modes, 0.0)
    cpu = dict.fromkeys(modes, 0.0)
    best = {m: [] for m in modes}
    for rnd in range(max(1, int(rounds))):
        for board in boards:
            for m in modes:
                c0 = time.process_time()
                t0 = time.perf_counter()
                r = searches[m].search(board, visits)
                seconds[m] += time.perf_counter() - t0
                cpu[m] += time.process_time() - c0
                sims[m] += r.total_visits
                if rnd == 0:
                    best[m].append(r.best())
    rates = {m: sims[m] / seconds[m] for m in modes}
    cpu_rates = {m: sims[m] / cpu[m] for m in modes}

    def label(m: tuple[str, int]) -> str:  # fp32 keeps the plain names of earlier reports
        return f"batch{m[1]}" if m[0] == "fp32" else f"{m[0]}_batch{m[1]}"

    reference = ("fp32", 1) if ("fp32", 1) in modes else modes[0]
    for m in modes:
        extra = {}
        if m != reference:
            same = sum(x == y for x, y in zip(best[m], best[reference], strict=True))
            extra[f"same_best_move_as_{label(reference)}"] = f"{same}/{len(boards)}"
        report.add(
            f"mcts_sims_per_s_{label(m)}",
            round(rates[m], 1),
            "sims/s",
            network_calls=evals[m].calls,
            positions_evaluated=evals[m].positions,
            collisions=searches[m].collisions,
            sims_per_cpu_s=round(cpu_rates[m], 1),
            precision=m[0],
            measured=f"{positions} positions x {visits} visits x {rounds} rounds, {size}x{size}",
            **extra,
        )
    for m in modes:
        if m[1] == 1:
            continue
        one = (m[0], 1)
        report.add(
            f"batched_speedup_{label(m)}",
            round(rates[m] / rates[one], 2),
            "x",
            by_cpu_time=round(cpu_rates[m] / cpu_rates[one], 2),
            measured=f"batch {m[1]} vs 1, both {m[0]}, same net, same positions, same run (modes interleaved per position)",
        )
    batched = [m for m in modes if m[1] != 1]
    if len(precisions) > 1 and batched:
        top = max(batched, key=rates.get)
        top1 = max((m for m in modes if m[1] == 1), key=rates.get)
        report.add(
            "batched_speedup_best",
            round(rates[top] / rates[top1], 2),
            "x",
            by_cpu_time=round(cpu_rates[top] / cpu_rates[top1], 2),
            measured=f"fastest batched mode ({label(top)}) vs fastest one-leaf mode ({label(top1)}), same net, same run",
        )
    # board speed
    rng = random.Random(1)
    t0 = time.perf_counter()
    played = 0
    while time.perf_counter() - t0 < 1.0:
        bd = Board(size)
        while not bd.is_over():
            moves = bd.legal_moves()
            bd.play(rng.choice(moves) if len(moves) > 1 and rng.random() > 0.05 else bd.pass_move)
            played += 1
    report.add(
        "board_moves_per_s",
        round(played / (time.perf_counter() - t0), 1),
        "moves/s",
        measured="random games incl. legal-move generation",
    )
    # network speed
    ev = Evaluator(net, device)
    for bs in (1, 64):
        xs = boards * (bs // len(boards) + 1)
        xs = xs[:bs]
        ev.raw(xs)
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < 1.0:
            ev.raw(xs)
            n += bs
        report.add(f"net_positions_per_s_batch{bs}", round(n / (time.perf_counter() - t0), 1), "positions/s")
    # self-play throughput with the training settings
    tc = meta.get("train_config", {})
    cfg = SelfPlayConfig(
        size=size,
        komi=komi,
        visits=int(tc.get("visits", 96)),
        fast_visits=int(tc.get("fast_visits", 24)),
        full_prob=float(tc.get("full_prob", 0.25)),
    )
    t0 = time.perf_counter()
    _, stats = selfplay(Evaluator(net, device), cfg, selfplay_games, seed=0)
    dt = time.perf_counter() - t0
    report.add(
        "selfplay_games_per_hour_per_process",
        round(stats["games"] / dt * 3600, 1),
        "games/h",
        measured=f"{stats['games']} games, visits {cfg.visits}/{cfg.fast_visits} p_full {cfg.full_prob}, 1 process, {threads} thread",
        mean_length=stats["mean_length"],
    )
    report.setup = {
        "size": size,
        "komi": komi,
        "params": count_params(net),
        "visits": visits,
        "positions": positions,
        "rounds": rounds,
        "batches": batches,
        "precisions": precisions,
        "threads": threads,
        "device": device,
        "torch": torch.__version__,
    }
    report.seconds = time.perf_counter() - t_all
    return report
