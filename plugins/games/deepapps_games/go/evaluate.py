"""``deepapps eval go``: play the model against a fixed opponent (random or GNU Go) and report wins.

There is no held-out dataset in self-play; the honest measure is games against opponents the model
never trained against. ``--limit`` is the number of games (default 50), ``--visits`` the search
size, ``--opponent`` (or ``--dataset``) ``random`` or ``gnugo``. ``--workers N`` plays on Ray
(``--ray-address`` joins a cluster); the network is loaded once per process that plays (see
:func:`~deepapps_games.go.arena.run_arena`).
"""

from __future__ import annotations

import time
from typing import Any

from deepapps import EvalReport, InputError

from ..plugin import EVAL_LEVEL, EVAL_SAMPLE_MOVES, EVAL_SEED, EVAL_VISITS, EVAL_WORKERS

DEFAULT_GAMES = 50


def evaluate(
    model: Any,
    dataset: str | None = None,
    split: str = "test",
    limit: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    opponent: str | None = None,
    level: int = EVAL_LEVEL,
    visits: int = EVAL_VISITS,
    size: int | None = None,
    komi: float | None = None,
    workers: int = EVAL_WORKERS,
    seed: int = EVAL_SEED,
    sample_moves: int = EVAL_SAMPLE_MOVES,
    ray_address: str | None = None,
) -> EvalReport:
    """Games against ``opponent``; ``model`` is the core's ModelRef."""
    from .arena import OPPONENTS, run_arena

    opponent = opponent or dataset or "random"
    if opponent not in OPPONENTS:
        raise InputError(f"opponent/dataset {opponent!r} is not known: use {' or '.join(sorted(OPPONENTS))}")
    games = int(limit or DEFAULT_GAMES)
    t0 = time.perf_counter()
    rep = run_arena(
        model=model,
        opponent=opponent,
        level=level,
        games=games,
        size=size,
        komi=komi,
        visits=visits,
        seed=seed,
        workers=workers,
        sample_moves=sample_moves,
        device=device,
        precision=precision,
        ray_address=ray_address,
    )
    metrics = {
        "win_rate": rep["win_rate"],
        "win_rate_ci95_low": rep["ci95"][0],
        "win_rate_ci95_high": rep["ci95"][1],
        "wins": rep["wins"],
        "wins_as_black": rep["wins_as_black"],
        "wins_as_white": rep["wins_as_white"],
        "mean_game_length": rep["mean_length"],
        "capped_games": rep["capped_games"],
        "distinct_games": rep["distinct_games"],
    }
    return EvalReport(
        task="go",
        model=rep["model"],
        dataset=rep["opponent"],
        split=f"{rep['size']}x{rep['size']} komi {rep['komi']:g}, {visits} visits",
        n=games,
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra={"results": rep["results"], "seed": seed},
    )
