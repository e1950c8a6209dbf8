"""``deepapps go ...``: the GTP engine and the arena against GNU Go (click; heavy imports inside)."""

from __future__ import annotations

import json
import sys

import click


@click.group(name="go")
def go_group() -> None:
    """Go engine tools: `deepapps go gtp` (for Sabaki/GoGui), `deepapps go arena` (vs GNU Go)."""


@go_group.command()
@click.option(
    "--model", "-m", default="go-7x7", show_default=True, help="Registered model or .safetensors path."
)
@click.option("--visits", default=200, show_default=True, help="Search visits per move.")
@click.option("--size", default=None, type=int, help="Initial board size (default: the model's).")
@click.option("--komi", default=None, type=float, help="Initial komi (default: the model's).")
@click.option("--batch", default=8, show_default=True, help="Leaves evaluated per network call.")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16"]),
    default="fp32",
    show_default=True,
    help="Network precision; bf16 is faster with --batch 32 on CPUs with AMX/AVX512-BF16 (see `deepapps bench go`).",
)
def gtp(model: str, visits: int, size: int | None, komi: float | None, batch: int, precision: str) -> None:
    """Speak GTP on stdin/stdout until `quit`."""
    from .gtp import GTPEngine, load_player

    player, meta = load_player(model, visits=visits, batch=batch, precision=precision)
    engine = GTPEngine(
        player, size=size or meta.get("size", 7), komi=komi if komi is not None else meta.get("komi", 7.5)
    )
    engine.serve(sys.stdin, sys.stdout)


@go_group.command()
@click.option("--model", "-m", default="go-7x7", show_default=True)
@click.option(
    "--opponent", default="gnugo", show_default=True, help="gnugo, random, or a command line of a GTP engine."
)
@click.option("--level", default=1, show_default=True, help="GNU Go level (0-10).")
@click.option("--games", default=20, show_default=True)
@click.option("--size", default=None, type=int, help="Board size (default: the model's).")
@click.option("--komi", default=None, type=float, help="Komi (default: the model's).")
@click.option("--visits", default=200, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--sgf-dir", default=None, help="Save every game as SGF in this folder.")
@click.option("--workers", default=1, show_default=True, help="Parallel game processes.")
@click.option(
    "--sample-moves",
    default=4,
    show_default=True,
    help="Sample our moves by visit count while the game is this short (variety; 0 = always the best).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def arena(
    model, opponent, level, games, size, komi, visits, seed, sgf_dir, workers, sample_moves, as_json
) -> None:
    """Play GAMES games against an opponent, alternating colours; win rate with a 95% Wilson CI."""
    from .arena import run_arena

    report = run_arena(
        model=model,
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
@click.option("--workers", default=1, show_default=True, help="Parallel GNU Go processes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def teacher_games(games, out, size, komi, levels, opening, eps, seed, workers, as_json) -> None:
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
