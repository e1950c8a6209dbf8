"""``deepapps.load("go")``: analyse a position (SGF file/text or a move list) with search.

``runner("game.sgf")`` returns a :class:`GoAnalysis`: the side to move's win probability, the top
moves with visit counts, the network's ownership estimate and the board (``.plot()`` draws it as
a wooden board with the candidates and ownership marked, the same picture the Go page shows).

The core resolves the model (a :class:`~deepapps.resolution.ModelRef`), the device and the
precision, and checks the declared options (``deepapps_games.plugin.RUN_OPTIONS``) before the
runner sees them; :func:`check_input` refuses a folder or a missing file before any model loads.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepapps import InputError, Result, Runner
from deepapps.results import private

from ..plugin import RUN_BATCH, RUN_TOP, RUN_VISITS
from .board import BLACK, Board, IllegalMoveError, gtp_to_move, move_to_gtp

_MOVE_TOKEN = re.compile(r"^(?:[a-hj-z]\d{1,2}|pass|b|w|black|white|empty|-)$", re.IGNORECASE)
_MOVES_HINT = "moves look like 'C3 D4 pass' or 'B C3, W D4'"


def check_input(text: str) -> None:
    """Refuse what cannot be a Go position (cheap, no model, no torch): a folder, a missing or
    non-SGF file, or text that is neither SGF nor a move list."""
    raw = str(text)
    stripped = raw.strip()
    if stripped.startswith("("):
        return  # SGF text: parsed (with line-exact errors) when the runner reads it
    path = Path(stripped).expanduser()
    if stripped and path.is_dir():
        raise InputError(f"input {raw}: is a folder; pass an SGF file, SGF text or a move list")
    if path.suffix.lower() == ".sgf" or (stripped and path.is_file()):
        if not path.exists():
            raise InputError(f"input {raw}: SGF file not found")
        if path.suffix.lower() != ".sgf":
            raise InputError(f"input {raw}: not an .sgf file; pass an SGF file, SGF text or a move list")
        return
    bad = [t for t in re.split(r"[\s,;]+", stripped) if t and not _MOVE_TOKEN.match(t)]
    if bad:
        raise InputError(
            f"input {raw[:60]!r}: {bad[0][:20]!r} is not a move, and no such SGF file exists; {_MOVES_HINT}"
        )


def load_model(model: Any, device: str = "cpu"):
    """(network, metadata) of a Go model: the core's ModelRef, a ModelSpec (the spec's lazy
    loader), or, from Python, a name or path (told apart by the core's resolver, once)."""
    from deepapps.resolution import resolve_model

    from .net import load_net

    return load_net(resolve_model("go", model).path, device=device)


def model_info(model: Any) -> tuple[int, float]:
    """(board size, komi) a model was trained for, read from its checkpoint metadata without
    building the network (the arena and evaluation need only these in the parent process)."""
    from deepapps.resolution import resolve_model
    from deepapps.runtime.checkpoint import read_metadata

    return model_defaults(read_metadata(resolve_model("go", model).path))


def model_defaults(meta: dict[str, Any]) -> tuple[int, float]:
    tc = meta.get("train_config", {})
    return int(meta.get("size", tc.get("size", 7))), float(meta.get("komi", tc.get("komi", 7.5)))


def parse_position(item: Any, size: int, komi: float, ply: int | None = None) -> tuple[Board, str]:
    """``(board, last move in GTP or "")`` from an SGF path/text, a move list ('C3 D4 pass' or
    'B C3, W D4'), or a Board."""
    from .sgf import parse_sgf, read_sgf

    if isinstance(item, Board):
        return item.copy(), ""
    if not isinstance(item, (str, os.PathLike)):
        raise InputError(f"Go input must be an SGF file, SGF text or a move list, got {type(item).__name__}")
    text = str(item).strip()
    if text.startswith("("):
        game = parse_sgf(text)
    elif text.lower().endswith(".sgf") or os.path.exists(text):
        game = read_sgf(text)
    else:
        return _parse_moves(text, size, komi, ply)
    played = game.moves if ply is None else game.moves[:ply]
    last = move_to_gtp(played[-1][1], game.size) if played else ""
    return game.board_at(ply), last


def _parse_moves(text: str, size: int, komi: float, ply: int | None) -> tuple[Board, str]:
    board = Board(size, komi=komi, max_moves=10 * size * size)
    if text in ("", "empty", "-"):
        return board, ""
    tokens = [t for t in re.split(r"[\s,;]+", text) if t]
    i = count = 0
    last = ""
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
            raise InputError(f"{exc}; {_MOVES_HINT}") from exc
        if color is not None and color != board.to_play:
            board.to_play = color
            board.ko = -1
        try:
            board.play(mv)
        except IllegalMoveError as exc:
            raise InputError(f"move {count + 1} ({tok}) is illegal: {exc}") from exc
        last = move_to_gtp(mv, size)
        count += 1
        i += 1
    return board, last


@dataclass(kw_only=True)
class GoAnalysis(Result):
    """Search result for one position: win probability for the side to move and the best moves."""

    size: int = 0
    komi: float = 0.0
    to_play: str = ""
    moves_played: int = 0
    last_move: str = ""  # GTP vertex of the move that led here ("" when unknown)
    win_probability: float = 0.0  # side to move, from the search (root value)
    network_win_probability: float = 0.0  # the raw value head
    black_win_probability: float = 0.0  # the search's, from black's side (for graphs over a game)
    best_move: str = ""
    top_moves: list[dict[str, Any]] = field(default_factory=list)
    visits: int = 0  # search visits below the root: the top moves' visits add up to this
    area_score: float = 0.0  # Tromp-Taylor score now (black minus white minus komi)
    ownership: list[float] = field(default_factory=list)  # per point, +1 black .. -1 white (network)
    board: str = ""
    _board: Any = private()

    def summary(self) -> str:
        tops = ", ".join(
            f"{m['move']} ({m['visits']} visits, {m['winrate']:.0%})" for m in self.top_moves[:5]
        )
        return f"{self.to_play} to play: win probability {self.win_probability:.1%}; best {self.best_move}; top: {tops}\n{self.board}"

    def plot(self, candidates: bool = True, ownership: bool = True, cell: int = 48):
        """The board as a PIL image: wood, stones, last move, candidates and ownership."""
        from .render import draw_board

        last = gtp_to_move(self.last_move, self.size) if self.last_move else None
        return draw_board(
            self._board,
            candidates=self.top_moves if candidates else None,
            ownership=self.ownership if ownership else None,
            last=last,
            cell=cell,
        )


class GoRunner(Runner):
    """Analyses one position per input with a fresh search tree (so concurrent pages share it safely)."""

    task = "go"

    def __init__(
        self, net, meta: dict[str, Any], model_name: str = "", device: str = "cpu", precision: str = "fp32"
    ) -> None:
        super().__init__(model_name, device, precision)
        from .net import Evaluator

        self.net = net
        self.meta = meta
        self.size, self.komi = model_defaults(meta)
        self.evaluator = Evaluator(net, device, precision=precision)

    def run_one(
        self,
        item: Any,
        visits: int = RUN_VISITS,
        batch: int = RUN_BATCH,
        top: int = RUN_TOP,
        size: int | None = None,
        komi: float | None = None,
        ply: int | None = None,
    ) -> GoAnalysis:
        t0 = time.perf_counter()
        board, last = parse_position(item, size or self.size, self.komi if komi is None else komi, ply)
        t1 = time.perf_counter()
        search, value, ownership = self.search(board, visits, batch)
        t2 = time.perf_counter()
        result = self.describe(board, last, search, value, ownership, top)
        stages = {
            "parse": (t1 - t0) * 1e3,
            "search": (t2 - t1) * 1e3,
            "postprocess": (time.perf_counter() - t2) * 1e3,
        }
        return self.finish(result, item, stages, started=t0)

    def search(self, board: Board, visits: int, batch: int):
        """(search result, raw value, ownership from black's view or None) for ``board``.

        The root's own expansion counts as one visit in the tree, so the search runs to
        ``visits + 1`` root visits: the moves below the root then get exactly ``visits``.
        """
        import numpy as np

        from .mcts import MCTS

        if board.is_over():  # analyse a finished game as if play went on
            board = board.copy()
            board.passes = 0
            if board.is_over():
                raise InputError(
                    f"the game reached the move cap ({board.max_moves} moves); nothing to analyse"
                )
        _, value, own = self.evaluator.raw([board])
        tree = MCTS(self.evaluator, batch=batch, rng=np.random.default_rng(0))
        res = tree.search(board, visits + 1)
        ownership = None if own is None else own[0] * board.to_play
        return res, float(value[0]), ownership

    def black_values(self, boards: list[Board], batch: int = 64) -> list[float]:
        """The value network's win probability for Black in each position, in batches and without
        search: a cheap curve over a whole game (the Go page's graph of an SGF)."""
        out: list[float] = []
        for i in range(0, len(boards), batch):
            chunk = boards[i : i + batch]
            _, values, _ = self.evaluator.raw(chunk)
            for board, v in zip(chunk, values, strict=True):
                p = (float(v) + 1) / 2
                out.append(round(p if board.to_play == BLACK else 1 - p, 4))
        return out

    def describe(self, board: Board, last: str, res, value: float, ownership, top: int) -> GoAnalysis:
        win = (res.value + 1) / 2
        moves = res.top(top)
        return GoAnalysis(
            size=board.n,
            komi=board.komi,
            to_play="black" if board.to_play == BLACK else "white",
            moves_played=board.moves,
            last_move=last,
            win_probability=round(win, 4),
            network_win_probability=round((value + 1) / 2, 4),
            black_win_probability=round(win if board.to_play == BLACK else 1 - win, 4),
            best_move=moves[0]["move"] if moves else "pass",
            top_moves=moves,
            visits=res.total_visits,
            area_score=board.score(),
            ownership=[] if ownership is None else [round(float(v), 3) for v in ownership],
            board=str(board),
            _board=board,
        )


def make_runner(model: Any, device: str = "cpu", precision: str = "fp32") -> GoRunner:
    """The task's runner factory: ``model`` is the core's ModelRef (a name or path from Python is
    resolved by the core's resolver); ``device`` and ``precision`` are already chosen."""
    from deepapps.resolution import resolve_model

    ref = resolve_model("go", model)
    net, meta = load_model(ref, device=device)
    return GoRunner(net, meta, model_name=ref.name, device=device, precision=precision)
