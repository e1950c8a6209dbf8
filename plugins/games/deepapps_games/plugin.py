"""Hook implementations of the games plugin (registered through the `deepapps` entry point).

Registers the ``go`` task (AlphaZero-style Go: self-play training, PUCT search, GTP, analysis),
its bundled 7×7 model, the ``deepapps go`` command group and the Streamlit page. Nothing heavy
is imported here: every callable is a lazy ``"module:function"`` string.
"""

from __future__ import annotations

from deepapps import ModelCard, ModelSpec, TaskSpec, UIPageSpec, hookimpl

GO = "deepapps_games.go"


@hookimpl
def register_tasks(register):
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
            inputs="SGF file, or a move list like 'B C3, W D4' / 'C3 D4' (optionally --size)",
            outputs="win probability for the side to move, top moves with visit counts, board",
            aliases=("alphago", "go-engine"),
            train=f"{GO}.train:train",
            evaluate=f"{GO}.evaluate:evaluate",
            bench=f"{GO}.bench:bench",
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
