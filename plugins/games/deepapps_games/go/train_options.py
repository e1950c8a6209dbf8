"""The options of ``deepapps train go`` in one table: the task registration declares them from it,
:func:`~deepapps_games.go.train.train` takes exactly these keywords and checks them against it.

Pure data (no torch, no numpy), so the registration can import it while listing tasks.
"""

from __future__ import annotations

from typing import Any

# name, type, default, minimum, maximum, help
TRAIN_OPTIONS: tuple[tuple[str, str, Any, float | None, float | None, str], ...] = (
    ("resume", "bool", False, None, None,
     "Continue the run in --out from its checkpoint/ (counters, replay, optimiser); metrics.jsonl is appended to."),
    ("size", "int", 7, 5, 19, "Board size N (an N x N board)."),
    ("komi", "float", 7.5, -625, 625, "Komi: points added to white's area score."),
    ("blocks", "int", 4, 1, 40, "Residual blocks of a new network (ignored with --model or --resume)."),
    ("channels", "int", 32, 4, 512, "Channels of a new network (ignored with --model or --resume)."),
    ("ownership", "bool", True, None, None, "Give a new network an ownership head (KataGo's auxiliary target)."),
    ("ownership_weight", "float", 1.0, 0, 100, "Weight of the ownership loss (0: do not train that head)."),
    ("workers", "int", 2, 1, 256, "Self-play workers (Ray actors, one CPU each; rank 0 only under --nproc)."),
    ("minutes", "float", 45.0, 0, 525_600, "Wall-clock budget in minutes, counted across resumes."),
    ("max_games", "int", 0, 0, 10**9, "Stop after this many self-play games in all (0: only --minutes stops)."),
    ("visits", "int", 96, 1, 10_000, "Search visits of a full self-play move (recorded as a training target)."),
    ("fast_visits", "int", 24, 1, 10_000, "Search visits of a fast self-play move (not recorded)."),
    ("full_prob", "float", 0.25, 0, 1, "Share of moves that get a full search (playout cap randomisation; 1: all)."),
    ("concurrent", "int", 8, 1, 1024, "Games a worker plays side by side, sharing network calls."),
    ("games_per_chunk", "int", 8, 1, 10_000, "Games a worker finishes before handing them to the trainer."),
    ("batch_size", "int", 128, 1, 65_536, "Positions per gradient step (per process under --nproc)."),
    ("lr", "float", 2e-3, 0, 10, "AdamW learning rate."),
    ("weight_decay", "float", 1e-4, 0, 10, "AdamW weight decay."),
    ("reuse", "float", 6.0, 0, 1000, "Gradient steps keep pace so each recorded position is used about this often."),
    ("buffer", "int", 40_000, 1, 10**8, "Replay buffer size in positions (the most recent are kept)."),
    ("min_buffer", "int", 512, 1, 10**8, "Positions collected before the first gradient step."),
    ("gate_every", "int", 150, 1, 10**9, "Gradient steps between gating matches (each one also checkpoints)."),
    ("gate_games", "int", 30, 1, 10_000, "Games of a gating match, candidate against the best network."),
    ("gate_visits", "int", 32, 1, 10_000, "Search visits per move in gating matches."),
    ("gate_threshold", "float", 0.55, 0, 1, "Win rate the candidate needs to become the best network."),
    ("eval_games", "int", 20, 1, 10_000, "Games the best network plays against a random player after each gate."),
    ("eval_visits", "int", 32, 1, 10_000, "Search visits per move in those games."),
    ("seed", "int", 0, 0, 2**31 - 1, "Random seed."),
    ("threads", "int", 1, 1, 1024, "CPU threads of each trainer process (self-play workers use one each)."),
    ("ray_address", "str", None, None, None,
     "Join this Ray cluster for the self-play workers (HOST:PORT; default $RAY_ADDRESS, else Ray starts here)."),
)  # fmt: skip


def train_options() -> tuple:
    """The table as :class:`deepapps.options.Option` declarations (for ``TaskSpec(train_options=...)``)."""
    from deepapps.options import Option

    return tuple(
        Option(name=name, type=kind, default=default, min=low, max=high, help=text)
        for name, kind, default, low, high, text in TRAIN_OPTIONS
    )


def check_train_options(values: dict[str, Any]) -> None:
    """Check values given from Python against the same declarations the core checks on the CLI."""
    from deepapps.options import check_options

    check_options(train_options(), values, "deepapps train go", fill_defaults=False)
