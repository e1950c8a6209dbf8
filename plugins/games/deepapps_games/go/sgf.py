"""SGF (FF[4]) reading and writing for Go: the main line of a game, setup stones, komi, result.

Only what an engine needs: ``SZ``, ``KM``, ``PB``/``PW``, ``RE``, ``RU``, ``AB``/``AW``/``AE``,
``PL`` and the ``B``/``W`` moves of the main line (the first variation at every branch).
Malformed input raises :class:`deepapps.InputError` saying where and what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deepapps import InputError

from .board import BLACK, WHITE, Board, IllegalMoveError, move_to_gtp

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class SGFGame:
    """A parsed game: size, komi, setup stones, moves (flat indices, pass = N²) and header fields."""

    size: int = 19
    komi: float = 7.5
    moves: list[tuple[int, int]] = field(default_factory=list)  # (colour, move)
    setup_black: list[int] = field(default_factory=list)
    setup_white: list[int] = field(default_factory=list)
    first_player: int | None = None
    properties: dict[str, str] = field(default_factory=dict)

    def board_at(self, ply: int | None = None, max_moves: int | None = None) -> Board:
        """The position after ``ply`` moves of the main line (all of them when None)."""
        n = self.size
        b = Board(n, komi=self.komi, max_moves=max_moves or 10 * n * n)
        for p in self.setup_black:
            b.stones[p] = BLACK
        for p in self.setup_white:
            b.stones[p] = WHITE
        if self.first_player is not None:
            b.to_play = self.first_player
        elif self.moves:
            b.to_play = self.moves[0][0]
        for i, (color, mv) in enumerate(self.moves[: len(self.moves) if ply is None else ply]):
            if color != b.to_play:  # consecutive moves by one colour: an implied pass keeps rules simple
                b.to_play = color
                b.ko = -1
            try:
                b.play(mv)
            except IllegalMoveError as exc:
                raise InputError(
                    f"SGF move {i + 1} ({'B' if color == BLACK else 'W'} {move_to_gtp(mv, n)}) is illegal: {exc}"
                ) from exc
        return b


def _point(value: str, n: int, where: str) -> int:
    if value == "" or (value == "tt" and n <= 19):
        return n * n
    if len(value) != 2 or value[0] not in LETTERS[:n] or value[1] not in LETTERS[:n]:
        raise InputError(
            f"SGF {where}: bad point [{value}] for a {n}x{n} board (expected two letters a-{LETTERS[n - 1]})"
        )
    return LETTERS.index(value[1]) * n + LETTERS.index(value[0])


def _points(value: str, n: int, where: str) -> list[int]:
    if ":" in value:  # compressed rectangle
        a, b = value.split(":", 1)
        pa, pb = _point(a, n, where), _point(b, n, where)
        r0, c0 = divmod(pa, n)
        r1, c1 = divmod(pb, n)
        return [
            r * n + c
            for r in range(min(r0, r1), max(r0, r1) + 1)
            for c in range(min(c0, c1), max(c0, c1) + 1)
        ]
    return [_point(value, n, where)]


class _Parser:
    """Recursive-descent SGF parser; keeps the main line (first variation at every branch)."""

    def __init__(self, text: str) -> None:
        self.t = text
        self.i = 0

    def _skip(self) -> None:
        while self.i < len(self.t) and self.t[self.i].isspace():
            self.i += 1

    def _peek(self) -> str:
        self._skip()
        return self.t[self.i] if self.i < len(self.t) else ""

    def tree(self) -> list[list[tuple[str, list[str]]]]:
        if self._peek() != "(":
            raise InputError(f"malformed SGF: expected '(' at character {self.i}")
        self.i += 1
        nodes: list[list[tuple[str, list[str]]]] = []
        while self._peek() == ";":
            self.i += 1
            nodes.append(self.node())
        if not nodes:
            raise InputError(f"malformed SGF: a game tree at character {self.i} has no ';' node")
        children = []
        while self._peek() == "(":
            children.append(self.tree())
        if self._peek() != ")":
            got = self._peek() or "end of file"
            raise InputError(f"malformed SGF: expected ')' at character {self.i}, found {got!r}")
        self.i += 1
        return nodes + (children[0] if children else [])

    def node(self) -> list[tuple[str, list[str]]]:
        props = []
        while self._peek().isalpha():
            start = self.i
            while self.i < len(self.t) and self.t[self.i].isalpha():
                self.i += 1
            ident = "".join(c for c in self.t[start : self.i] if c.isupper())
            if not ident:
                raise InputError(
                    f"malformed SGF: property {self.t[start : self.i]!r} at character {start} has no capital letters"
                )
            values = []
            while self._peek() == "[":
                self.i += 1
                buf = []
                while self.i < len(self.t) and self.t[self.i] != "]":
                    if self.t[self.i] == "\\" and self.i + 1 < len(self.t):
                        self.i += 1
                    buf.append(self.t[self.i])
                    self.i += 1
                if self.i >= len(self.t):
                    raise InputError(f"malformed SGF: the value of {ident} is not closed with ']'")
                self.i += 1
                values.append("".join(buf))
            if not values:
                raise InputError(f"malformed SGF: property {ident} at character {start} has no [value]")
            props.append((ident, values))
        nxt = self._peek()
        if nxt == "":
            raise InputError(
                "malformed SGF: the game tree is not closed (expected ')' before the end of the file)"
            )
        if nxt not in (";", "(", ")"):
            raise InputError(f"malformed SGF: unexpected {nxt or 'end of file'!r} at character {self.i}")
        return props


def _tokenize(text: str) -> list[list[tuple[str, list[str]]]]:
    """Nodes of the main line: each a list of (property, values)."""
    start = text.find("(")
    if start < 0:
        raise InputError(
            "not an SGF file: no '(' starts a game tree (an SGF game looks like '(;GM[1]SZ[9];B[cc])')"
        )
    p = _Parser(text)
    p.i = start
    return p.tree()


def parse_sgf(text: str) -> SGFGame:
    """Parse SGF text (main line). Raises InputError for malformed files or illegal moves."""
    if not isinstance(text, str):
        raise InputError("SGF must be text")
    nodes = _tokenize(text)
    root = dict(nodes[0])
    gm = root.get("GM", ["1"])[0].strip()
    if gm not in ("", "1"):
        raise InputError(f"SGF game type GM[{gm}] is not Go (GM[1])")
    try:
        size_text = root.get("SZ", ["19"])[0].split(":")[0].strip()
        size = int(size_text)
    except ValueError as exc:
        raise InputError(f"SGF SZ[{root['SZ'][0]}] is not a board size") from exc
    if not 2 <= size <= 19:
        raise InputError(f"SGF board size {size} is not supported (2..19)")
    try:
        komi = float(root.get("KM", ["7.5"])[0] or 7.5)
    except ValueError as exc:
        raise InputError(f"SGF KM[{root['KM'][0]}] is not a number") from exc
    game = SGFGame(size=size, komi=komi)
    for key in ("PB", "PW", "RE", "RU", "DT", "GN", "C"):
        if key in root:
            game.properties[key] = root[key][0]
    for idx, node in enumerate(nodes):
        for ident, values in node:
            where = f"node {idx} {ident}"
            if ident in ("B", "W"):
                color = BLACK if ident == "B" else WHITE
                game.moves.append((color, _point(values[0] if values else "", size, where)))
            elif ident in ("AB", "AW", "AE"):
                pts = [p for v in values for p in _points(v, size, where)]
                if ident == "AB":
                    game.setup_black.extend(pts)
                elif ident == "AW":
                    game.setup_white.extend(pts)
                else:
                    game.setup_black = [p for p in game.setup_black if p not in pts]
                    game.setup_white = [p for p in game.setup_white if p not in pts]
            elif ident == "PL" and idx == 0:
                game.first_player = BLACK if values[0].upper().startswith("B") else WHITE
    game.board_at()  # validates every move
    return game


def read_sgf(path: str | Path) -> SGFGame:
    p = Path(path)
    if not p.exists():
        raise InputError(f"SGF file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = p.read_text(encoding="latin-1")
    return parse_sgf(text)


def _sgf_point(move: int, n: int) -> str:
    if move == n * n:
        return ""
    r, c = divmod(move, n)
    return LETTERS[c] + LETTERS[r]


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("]", "\\]")


def write_sgf(
    moves: list[tuple[int, int]] | list[int],
    size: int,
    komi: float,
    result: str = "",
    black: str = "",
    white: str = "",
    comments: dict[int, str] | None = None,
) -> str:
    """SGF text for a game from its moves (``(colour, move)`` pairs, or bare moves alternating from black)."""
    props = f"GM[1]FF[4]CA[UTF-8]AP[deepapps]SZ[{size}]KM[{komi:g}]RU[Chinese]"
    if black:
        props += f"PB[{_escape(black)}]"
    if white:
        props += f"PW[{_escape(white)}]"
    if result:
        props += f"RE[{_escape(result)}]"
    parts = [f"(;{props}"]
    color = BLACK
    for i, m in enumerate(moves):
        if isinstance(m, tuple):
            color, mv = m
        else:
            mv = m
        tag = "B" if color == BLACK else "W"
        c = f"C[{_escape(comments[i])}]" if comments and i in comments else ""
        parts.append(f";{tag}[{_sgf_point(mv, size)}]{c}")
        color = -color
    parts.append(")")
    return "\n".join(parts) + "\n"


def result_string(board: Board) -> str:
    s = board.score()
    return f"B+{s:g}" if s > 0 else f"W+{-s:g}"
