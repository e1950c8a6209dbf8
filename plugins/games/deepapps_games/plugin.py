"""Hook implementations of the games plugin (registered through the `deepapps` entry point).

Registers the ``go`` task (AlphaZero-style Go: self-play training, PUCT search, GTP, analysis)
with its declared options per verb, its bundled models, the ``deepapps go`` command group and the
Streamlit page. Nothing heavy is imported here: every callable is a lazy ``"module:function"``
string, and the board constants come from the pure-Python board module.
"""

from __future__ import annotations

from deepapps import ModelCard, ModelSpec, Option, TaskSpec, UIPageSpec, hookimpl

from .go.board import MAX_KOMI, MAX_SIZE, MIN_SIZE

GO = "deepapps_games.go"
MAX_VISITS = 10_000  # the search's own cap (go.mcts.MAX_VISITS; that module imports numpy)
MAX_BATCH = 1024
MAX_TOP = MAX_SIZE * MAX_SIZE + 1  # every point and the pass

# defaults shared by the declarations and the functions' own defaults (for direct Python use)
RUN_VISITS, RUN_BATCH, RUN_TOP = 200, 8, 5
EVAL_VISITS, EVAL_LEVEL, EVAL_WORKERS, EVAL_SEED, EVAL_SAMPLE_MOVES = 200, 1, 1, 12345, 4
BENCH_VISITS, BENCH_BATCHES, BENCH_POSITIONS, BENCH_ROUNDS = 400, (16, 32, 64), 4, 2
BENCH_SELFPLAY_GAMES, BENCH_THREADS, BENCH_PRECISIONS = 8, 1, ("fp32", "bf16")
BENCH_SCALE_GAMES, BENCH_SCALE_CHUNK = 32, 8  # chunks as training plays them (games_per_chunk 8)


def _visits(default: int, help_text: str) -> Option:
    return Option("visits", "int", default, help_text, min=1, max=MAX_VISITS)


def _size(help_text: str) -> Option:
    return Option("size", "int", None, help_text, min=MIN_SIZE, max=MAX_SIZE)


def _komi(help_text: str) -> Option:
    return Option("komi", "float", None, help_text, min=-MAX_KOMI, max=MAX_KOMI)


RUN_OPTIONS = (
    _visits(RUN_VISITS, "search visits for the position (the top moves' visits add up to this)"),
    Option("batch", "int", RUN_BATCH, "leaves evaluated per network call", min=1, max=MAX_BATCH),
    Option("top", "int", RUN_TOP, "how many candidate moves to report", min=1, max=MAX_TOP),
    _size("board size of a move list (default: the model's; SGF files carry their own)"),
    _komi("komi of a move list (default: the model's; SGF files carry their own)"),
    Option("ply", "int", None, "analyse the position after this many moves (default: the last)", min=0),
)

EVAL_OPTIONS = (
    Option(
        "opponent",
        "str",
        None,
        "random or gnugo (default: --dataset if given, else random)",
        choices=("random", "gnugo"),
    ),
    Option("level", "int", EVAL_LEVEL, "GNU Go level", min=0, max=10),
    _visits(EVAL_VISITS, "search visits per move of our engine"),
    _size("board size (default: the model's)"),
    _komi("komi (default: the model's)"),
    Option(
        "workers",
        "int",
        EVAL_WORKERS,
        "games played at once by Ray workers (1: in this process)",
        min=1,
        max=4096,
    ),
    Option("ray_address", "str", None, "play on this Ray cluster (HOST:PORT; default $RAY_ADDRESS)"),
    Option("seed", "int", EVAL_SEED, "seed of our engine's opening sampling and the opponent", min=0),
    Option(
        "sample_moves",
        "int",
        EVAL_SAMPLE_MOVES,
        "sample our moves by visit count while the game is this short (variety; 0 = always the best)",
        min=0,
        max=1000,
    ),
)

BENCH_OPTIONS = (
    _visits(BENCH_VISITS, "search visits per position"),
    Option(
        "batch",
        "int",
        BENCH_BATCHES,
        "batched modes to compare with one leaf per network call",
        min=1,
        max=MAX_BATCH,
        multiple=True,
    ),
    Option("positions", "int", BENCH_POSITIONS, "positions searched per round", min=1, max=64),
    Option("rounds", "int", BENCH_ROUNDS, "rounds over the positions", min=1, max=100),
    Option("selfplay_games", "int", BENCH_SELFPLAY_GAMES, "self-play games timed (0 skips)", min=0, max=1000),
    Option("threads", "int", BENCH_THREADS, "torch CPU threads", min=1, max=512),
    Option(
        "scale_games",
        "int",
        BENCH_SCALE_GAMES,
        "self-play games per worker setup timed on Ray (1 and 2 workers) and the old process pool (0 skips)",
        min=0,
        max=10_000,
    ),
    Option(
        "compare_precisions",
        "str",
        BENCH_PRECISIONS,
        "precisions whose search speed is compared (network and self-play figures use --precision)",
        choices=("fp32", "bf16"),
        multiple=True,
    ),
)


@hookimpl
def register_tasks(register):
    from .go.train_options import train_options

    register(
        TaskSpec(
            name="go",
            title="Go: AlphaZero-style engine (self-play, PUCT search, GTP, game analysis)",
            domain="games",
            runner=f"{GO}.runner:make_runner",
            default_model="go-7x7",
            description=(
                "Policy-value residual network + batched PUCT search. `deepapps run go game.sgf` "
                "analyses a position (win probability, top moves with visits); `deepapps go gtp` "
                "speaks GTP; `deepapps go arena` plays GNU Go."
            ),
            inputs="SGF file, SGF text, or a move list like 'B C3, W D4' / 'C3 D4' (optionally --size)",
            outputs="win probability for the side to move, top moves with visit counts, ownership, board",
            aliases=("alphago", "go-engine"),
            train=f"{GO}.train:train",
            evaluate=f"{GO}.evaluate:evaluate",
            bench=f"{GO}.bench:bench",
            options=RUN_OPTIONS,
            train_options=train_options(),
            eval_options=EVAL_OPTIONS,
            bench_options=BENCH_OPTIONS,
            input_kind="custom",
            check_input=f"{GO}.runner:check_input",
            distributed=True,
            precisions=("fp32", "bf16"),
        )
    )


@hookimpl
def register_models(register):
    from .go.card import CARD_7X7, CARD_7X7_ZERO, CARD_9X9

    for name, card, size_mb in (
        ("go-7x7", CARD_7X7, 0.72),
        ("go-7x7-zero", CARD_7X7_ZERO, 0.34),
        ("go-9x9", CARD_9X9, 0.72),
    ):
        register(
            ModelSpec(
                name=name,
                task="go",
                source=f"bundled:deepapps_games/go/models/{name}.safetensors",
                load=f"{GO}.runner:load_model",
                card=ModelCard(**card),
                size_mb=size_mb,
            )
        )


@hookimpl
def register_commands(cli):
    from .go.cli import go_group

    cli.add_command(go_group)


@hookimpl
def register_ui_pages(register):
    register(UIPageSpec(task="go", title="Go", render=f"{GO}.ui:render", icon="⚫"))
