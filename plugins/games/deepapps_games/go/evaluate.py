"""``deepapps eval go``: play the model against a fixed opponent (random or GNU Go) and report wins.

There is no held-out dataset in self-play; the honest measure is games against opponents the model
never trained against. ``--limit`` is the number of games (default 50), ``--visits`` the search size.
"""

from __future__ import annotations

import time
from typing import Any

from deepapps import EvalReport, InputError


def evaluate(
    model: Any = None,
    dataset: str | None = None,
    split: str = "test",
    limit: int | None = None,
    device: str = "cpu",
    opponent: str | None = None,
    level: int = 1,
    visits: int = 200,
    size: int | None = None,
    komi: float | None = None,
    workers: int = 1,
    seed: int = 12345,
    **options: Any,
) -> EvalReport:
    from .arena import run_arena
    from .runner import load_model, model_defaults

    if options:
        raise InputError(f"unknown option(s) for `deepapps eval go`: {', '.join(sorted(options))}")
    opponent = opponent or dataset or "random"
    if opponent not in ("random", "gnugo"):
        raise InputError(f"opponent/dataset {opponent!r} is not known: use random or gnugo")
    name = getattr(model, "name", model) or "go-7x7"
    _, meta = load_model(name)
    msize, mkomi = model_defaults(meta)
    games = int(limit or 50)
    t0 = time.perf_counter()
    rep = run_arena(
        model=name,
        opponent=opponent,
        level=level,
        games=games,
        size=int(size or msize),
        komi=float(mkomi if komi is None else komi),
        visits=visits,
        seed=seed,
        workers=workers,
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
    }
    return EvalReport(
        task="go",
        model=str(name),
        dataset=rep["opponent"],
        split=f"{rep['size']}x{rep['size']} komi {rep['komi']:g}, {visits} visits",
        n=games,
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra={"results": rep["results"], "seed": seed},
    )
