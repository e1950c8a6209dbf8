"""``deepapps.load("go")``: analyse a position (SGF file/text or a move list) with search.

``runner("game.sgf")`` returns a :class:`GoAnalysis`: the side to move's win probability, the top
moves with visit counts, and the board (``.plot()`` draws it with the candidates marked).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepapps import InputError, Result, Runner
from deepapps.results import private

from .board import BLACK, Board, IllegalMoveError, gtp_to_move


def model_file(model: Any) -> Path:
    """The weights file of a registered ModelSpec or a path string."""
    from deepapps import ModelSpec
    from deepapps.runtime.pull import model_path

    if isinstance(model, ModelSpec):
        return Path(model_path(model))
    if model is None:
        import deepapps

        _, spec = deepapps.resolve_model("go", None)
        return Path(model_path(spec))
    if isinstance(model, str):
        import deepapps

        if deepapps.registry.has_model(model):
            return Path(model_path(deepapps.registry.model(model)))
        p = Path(model).expanduser()
        if not p.exists():
            raise InputError(
                f"Go model {model!r} is neither a registered model (see `deepapps models --task go`) nor a file"
            )
        return p
    raise InputError(f"cannot use {model!r} as a Go model")


def load_model(spec: Any, device: str = "cpu", **_: Any):
    """(network, metadata) for a ModelSpec or path."""
    from .net import load_net

    return load_net(model_file(spec), device=device)


def model_defaults(meta: dict[str, Any]) -> tuple[int, float]:
    tc = meta.get("train_config", {})
    return int(meta.get("size", tc.get("size", 7))), float(meta.get("komi", tc.get("komi", 7.5)))


def parse_position(item: Any, size: int, komi: float, ply: int | None = None) -> tuple[Board, str]:
    """A Board from an SGF path/text, a move list ('C3 D4 pass' or 'B C3, W D4'), or a Board."""
    from .sgf import parse_sgf, read_sgf

    if isinstance(item, Board):
        return item.copy(), "board"
    if not isinstance(item, (str, os.PathLike)):
        raise InputError(f"Go input must be an SGF file, SGF text or a move list, got {type(item).__name__}")
    text = str(item).strip()
    if text.lower().endswith(".sgf") or (os.path.exists(text) and not text.startswith("(")):
        game = read_sgf(text)
        return game.board_at(ply), f"sgf:{Path(text).name}"
    if text.startswith("("):
        return parse_sgf(text).board_at(ply), "sgf"
    board = Board(size, komi=komi, max_moves=10 * size * size)
    if text in ("", "empty", "-"):
        return board, "moves"
    tokens = [t for t in re.split(r"[\s,;]+", text) if t]
    i = 0
    count = 0
    while i < len(tokens):
        tok = tokens[i]
        color = None
        if tok.upper() in ("B", "W", "BLACK", "WHITE") and i + 1 < len(tokens):
            color = BLACK if tok.upper().startswith("B") else -BLACK
            i += 1
            tok = tokens[i]
        if ply is not None and count >= ply:
            break
        try:
            mv = gtp_to_move(tok, size)
        except ValueError as exc:
            raise InputError(f"{exc}; moves look like 'C3 D4 pass' or 'B C3, W D4'") from exc
        if color is not None and color != board.to_play:
            board.to_play = color
            board.ko = -1
        try:
            board.play(mv)
        except IllegalMoveError as exc:
            raise InputError(f"move {count + 1} ({tok}) is illegal: {exc}") from exc
        count += 1
        i += 1
    return board, "moves"


@dataclass(kw_only=True)
class GoAnalysis(Result):
    """Search result for one position: win probability for the side to move and the best moves."""

    size: int = 0
    komi: float = 0.0
    to_play: str = ""
    moves_played: int = 0
    win_probability: float = 0.0  # side to move, from the search (root value)
    network_win_probability: float = 0.0  # the raw value head
    best_move: str = ""
    top_moves: list[dict[str, Any]] = field(default_factory=list)
    visits: int = 0
    area_score: float = 0.0  # Tromp-Taylor score now (black minus white minus komi)
    board: str = ""
    source: str = ""
    _board: Any = private()

    def summary(self) -> str:
        tops = ", ".join(
            f"{m['move']} ({m['visits']} visits, {m['winrate']:.0%})" for m in self.top_moves[:5]
        )
        return f"{self.to_play} to play: win probability {self.win_probability:.1%}; best {self.best_move}; top: {tops}\n{self.board}"

    def plot(self):
        from .render import draw_board

        return draw_board(self._board, candidates=self.top_moves)


class GoRunner(Runner):
    task = "go"

    def __init__(
        self,
        net,
        meta: dict[str, Any],
        model_name: str = "",
        device: str = "cpu",
        visits: int = 200,
        batch: int = 8,
        precision: str = "fp32",
        **options: Any,
    ) -> None:
        super().__init__(model_name, device, **options)
        from .net import Evaluator
        from .selfplay import MCTSPlayer

        self.net = net
        self.meta = meta
        self.size, self.komi = model_defaults(meta)
        self.evaluator = Evaluator(net, device, precision=precision)
        self.player = MCTSPlayer(self.evaluator, visits=visits, batch=batch)

    def preprocess(
        self, item: Any, size: int | None = None, komi: float | None = None, ply: int | None = None, **_: Any
    ):
        return parse_position(item, int(size or self.size), float(self.komi if komi is None else komi), ply)

    def forward(self, prepared, visits: int | None = None, **_: Any):
        board, source = prepared
        if board.is_over():
            board = board.copy()
            board.passes = 0
        _, value, _ = self.evaluator.raw([board])
        self.player.reset()
        res = self.player.analyse(board, visits=int(visits or self.player.visits))
        return board, source, res, float(value[0])

    def postprocess(self, raw, item, top: int = 5, **_: Any) -> GoAnalysis:
        board, source, res, value = raw
        return GoAnalysis(
            size=board.n,
            komi=board.komi,
            to_play="black" if board.to_play == BLACK else "white",
            moves_played=board.moves,
            win_probability=round((res.value + 1) / 2, 4),
            network_win_probability=round((value + 1) / 2, 4),
            best_move=res.top(1)[0]["move"] if res.top(1) else "pass",
            top_moves=res.top(int(top)),
            visits=res.total_visits,
            area_score=board.score(),
            board=str(board),
            source=source,
            _board=board,
        )


def make_runner(
    model: Any, device: str = "cpu", visits: int = 200, batch: int = 8, **options: Any
) -> GoRunner:
    net, meta = load_model(model, device="cpu" if device == "auto" else device)
    name = getattr(model, "name", str(model))
    return GoRunner(net, meta, model_name=name, device=device, visits=visits, batch=batch, **options)
