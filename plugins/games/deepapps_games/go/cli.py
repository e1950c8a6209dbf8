"""``deepapps go ...``: the GTP engine and the arena against GNU Go (click; heavy imports inside).

A ``--model`` (a registered name or alias, or a path; the task's default model when omitted) is
resolved once here, at the command edge, by the core's resolver; the commands get the ModelRef.
"""

from __future__ import annotations

import json
import sys

import click

from ..plugin import MAX_VISITS
from .board import MAX_KOMI, MAX_SIZE, MIN_SIZE

MODEL_HELP = "Registered model or alias, or a .safetensors path (default: the go task's default model)."
SIZE = click.IntRange(MIN_SIZE, MAX_SIZE)
VISITS = click.IntRange(1, MAX_VISITS)
KOMI = click.FloatRange(-MAX_KOMI, MAX_KOMI)


def _model_ref(name: str | None):
    """The core's one resolution of ``--model`` (an unknown name gets a did-you-mean error)."""
    from deepapps.resolution import resolve_model

    return resolve_model("go", name)


@click.group(name="go")
def go_group() -> None:
    """Go engine tools: `deepapps go gtp` (for Sabaki/GoGui), `deepapps go arena` (vs GNU Go)."""


@go_group.command()
@click.option("--model", "-m", default=None, help=MODEL_HELP)
@click.option("--visits", default=200, show_default=True, type=VISITS, help="Search visits per move.")
@click.option("--size", default=None, type=SIZE, help="Initial board size (default: the model's).")
@click.option("--komi", default=None, type=KOMI, help="Initial komi (default: the model's).")
@click.option(
    "--batch",
    default=8,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Leaves evaluated per network call.",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16"]),
    default="fp32",
    show_default=True,
    help="Network precision; bf16 is faster with --batch 32 on CPUs with AMX/AVX512-BF16 (see `deepapps bench go`).",
)
def gtp(
    model: str | None, visits: int, size: int | None, komi: float | None, batch: int, precision: str
) -> None:
    """Speak GTP on stdin/stdout until `quit`."""
    from .gtp import GTPEngine, load_player

    player, meta = load_player(_model_ref(model), visits=visits, batch=batch, precision=precision)
    engine = GTPEngine(
        player, size=size or meta.get("size", 7), komi=komi if komi is not None else meta.get("komi", 7.5)
    )
    engine.serve(sys.stdin, sys.stdout)


def ray_options(workers_help: str):
    """``--workers N`` and ``--ray-address``, the same on every command that plays games on Ray."""

    def apply(fn):
        fn = click.option(
            "--ray-address",
            default=None,
            envvar="RAY_ADDRESS",
            help="Play on this Ray cluster (HOST:PORT of `ray start --head`); "
            "default: Ray starts here when --workers > 1.",
        )(fn)
        return click.option(
            "--workers", default=1, show_default=True, type=click.IntRange(1, 4096), help=workers_help
        )(fn)

    return apply


@go_group.command()
@click.option("--model", "-m", default=None, help=MODEL_HELP)
@click.option(
    "--opponent",
    default="gnugo",
    show_default=True,
    type=click.Choice(["gnugo", "random"]),
    help="GNU Go (over GTP) or the random player.",
)
@click.option(
    "--level", default=1, show_default=True, type=click.IntRange(0, 10), help="GNU Go level (0-10)."
)
@click.option("--games", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--size", default=None, type=SIZE, help="Board size (default: the model's).")
@click.option("--komi", default=None, type=KOMI, help="Komi (default: the model's).")
@click.option("--visits", default=200, show_default=True, type=VISITS)
@click.option("--seed", default=0, show_default=True)
@click.option("--sgf-dir", default=None, help="Save every game as SGF in this folder.")
@ray_options("Games at once on Ray workers (each loads the network once); 1 plays in this process.")
@click.option(
    "--sample-moves",
    default=4,
    show_default=True,
    type=click.IntRange(min=0),
    help="Sample our moves by visit count while the game is this short (variety; 0 = always the best).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def arena(
    model,
    opponent,
    level,
    games,
    size,
    komi,
    visits,
    seed,
    sgf_dir,
    workers,
    ray_address,
    sample_moves,
    as_json,
) -> None:
    """Play GAMES games against an opponent, alternating colours; win rate with a 95% Wilson CI."""
    from .arena import run_arena

    report = run_arena(
        model=_model_ref(model),
        opponent=opponent,
        level=level,
        games=games,
        size=size,
        komi=komi,
        visits=visits,
        seed=seed,
        sgf_dir=sgf_dir,
        workers=workers,
        show_progress=not as_json,
        sample_moves=sample_moves,
        ray_address=ray_address,
    )
    if as_json:
        click.echo(json.dumps(report))
    else:
        lo, hi = report["ci95"]
        click.echo(
            f"{report['model']} vs {report['opponent']}: {report['wins']}/{report['games']} wins "
            f"({report['win_rate']:.1%}, 95% CI {lo:.1%}-{hi:.1%}); as black {report['wins_as_black']}, "
            f"as white {report['wins_as_white']}; {report['distinct_games']} distinct games; "
            f"{report['seconds']:.0f} s"
        )


@go_group.command(name="teacher-games")
@click.option("--games", default=6000, show_default=True, help="GNU Go self-play games to record.")
@click.option("--out", default="runs/go-teacher/teacher.safetensors", show_default=True)
@click.option("--size", default=7, show_default=True)
@click.option("--komi", default=7.5, show_default=True)
@click.option(
    "--level",
    "levels",
    multiple=True,
    type=int,
    default=(1,),
    show_default=True,
    help="GNU Go level(s); repeat to mix (each game picks one).",
)
@click.option("--opening", default=6, show_default=True, help="Up to this many random opening moves.")
@click.option("--eps", default=0.04, show_default=True, help="Chance of a random (unrecorded) move later.")
@click.option("--seed", default=0, show_default=True)
@ray_options("GNU Go games at once on Ray workers; 1 plays in this process.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def teacher_games(games, out, size, komi, levels, opening, eps, seed, workers, ray_address, as_json) -> None:
    """Record GNU Go self-play games as training data (policy: GNU Go's move; value: the outcome)."""
    from .teacher import generate

    report = generate(
        games,
        out,
        size=size,
        komi=komi,
        levels=tuple(levels),
        opening=opening,
        eps=eps,
        seed=seed,
        workers=workers,
        show_progress=not as_json,
        ray_address=ray_address,
    )
    click.echo(
        json.dumps(report)
        if as_json
        else f"{report['games']} games, {report['positions']} positions -> {report['path']} "
        f"({report['seconds']:.0f} s)"
    )


@go_group.command()
@click.argument("data", nargs=-1, required=True)
@click.option("--out", default="runs/go-pretrain", show_default=True, help="Output folder.")
@click.option("--blocks", default=4, show_default=True)
@click.option("--channels", default=32, show_default=True)
@click.option("--steps", default=4000, show_default=True)
@click.option("--batch", default=256, show_default=True)
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=1, show_default=True, help="Torch threads.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def pretrain(data, out, blocks, channels, steps, batch, lr, seed, threads, as_json) -> None:
    """Train a fresh network on teacher games (DATA: one or more files from `deepapps go
    teacher-games`); 5% of the games are held out for move-prediction accuracy and value error.
    Continue with self-play via `deepapps train go --init OUT/model.safetensors`."""
    from .teacher import pretrain as run

    report = run(
        data,
        out,
        blocks=blocks,
        channels=channels,
        steps=steps,
        batch=batch,
        lr=lr,
        seed=seed,
        threads=threads,
        show_progress=not as_json,
    )
    click.echo(
        json.dumps(report)
        if as_json
        else f"{report['model']}: held-out move top-1 {report['held_out']['move_top1']:.1%}, "
        f"value MSE {report['held_out']['value_mse']:.3f} ({report['minutes']:.1f} min)"
    )
