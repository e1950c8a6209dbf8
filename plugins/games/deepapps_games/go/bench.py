"""``deepapps bench go``: search speed with batched vs one-leaf evaluation, self-play throughput.

Every figure comes from this run on this machine: the same network searches the same positions
once with ``batch`` leaves per network call and once with one leaf per call.
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
    batch: int | list[int] = (16, 32),
    positions: int = 4,
    selfplay_games: int = 8,
    threads: int = 1,
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
    rates = {}
    batches = [int(b) for b in (batch if isinstance(batch, (list, tuple)) else [batch])]
    for b in [1, *batches]:
        ev = Evaluator(net, device)
        m = MCTS(ev, batch=b)
        sims = 0
        t0 = time.perf_counter()
        for board in boards:
            r = m.search(board, visits)
            sims += r.total_visits
        dt = time.perf_counter() - t0
        rates[b] = sims / dt
        report.add(
            f"mcts_sims_per_s_batch{b}",
            round(sims / dt, 1),
            "sims/s",
            network_calls=ev.calls,
            positions_evaluated=ev.positions,
            collisions=m.collisions,
            measured=f"{positions} positions x {visits} visits, {size}x{size}",
        )
    for b in batches:
        report.add(
            f"batched_speedup_batch{b}",
            round(rates[b] / rates[1], 2),
            "x",
            measured=f"batch {b} vs 1, same net, same positions, same run",
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
        "batches": batches,
        "threads": threads,
        "device": device,
        "torch": torch.__version__,
    }
    report.seconds = time.perf_counter() - t_all
    return report
