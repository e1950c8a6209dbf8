"""SGF (FF[4]) reading and writing for Go: the main line of a game, setup stones, komi, result.

Only what an engine needs: ``SZ``, ``KM``, ``PB``/``PW``, ``RE``, ``RU``, ``AB``/``AW``/``AE``,
``PL`` and the ``B``/``W`` moves of the main line (the first variation at every branch). Setup
stones are applied before the first move, wherever they appear on the main line.
Malformed input raises :class:`deepapps.InputError` saying where and what was wrong; the scanner
is iterative, so deeply nested variations cannot exhaust the stack, and files are capped at
:data:`MAX_SGF_BYTES`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deepapps import InputError

from .board import BLACK, WHITE, Board, IllegalMoveError, check_komi, move_to_gtp

LETTERS = "abcdefghijklmnopqrstuvwxyz"
MAX_SGF_BYTES = 8 * 1024 * 1024  # a long professional game is ~10 KB; a big commented collection ~1 MB
MAX_SGF_CHARS = MAX_SGF_BYTES
MAX_MAIN_LINE_VALUES = 200_000  # nodes + property values kept from the main line (memory: tens of MB)


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
        dead = [p for p in (*self.setup_black, *self.setup_white) if not b._has_liberty(p)]
        if dead:
            raise InputError(
                f"SGF setup stones leave the group at {move_to_gtp(dead[0], n)} without liberties; "
                "fix the AB/AW properties"
            )
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
            f"SGF {where}: bad point [{value[:40]}] for a {n}x{n} board (expected two letters a-{LETTERS[n - 1]})"
        )
    return LETTERS.index(value[1]) * n + LETTERS.index(value[0])


def _points(value: str, n: int, where: str) -> list[int]:
    if ":" in value:  # compressed rectangle
        a, b = value.split(":", 1)
        pa, pb = _point(a, n, where), _point(b, n, where)
        if n * n in (pa, pb):
            raise InputError(f"SGF {where}: the rectangle [{value[:40]}] has a pass as a corner")
        r0, c0 = divmod(pa, n)
        r1, c1 = divmod(pb, n)
        return [
            r * n + c
            for r in range(min(r0, r1), max(r0, r1) + 1)
            for c in range(min(c0, c1), max(c0, c1) + 1)
        ]
    return [_point(value, n, where)]


# one token: punctuation, a property (identifier and its [values]), anything else, or the end
_TOKEN = re.compile(
    r"\s*(?:(?P<punct>[();])|(?P<ident>[A-Za-z]+)(?P<values>(?:\s*\[(?:[^\]\\]|\\.)*\])*)|(?P<other>.)|$)",
    re.S,
)
_VALUE = re.compile(r"\[((?:[^\]\\]|\\.)*)\]", re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)

Node = list[tuple[str, list[str]]]


@dataclass(slots=True)
class _Tree:
    """One open ``(...)`` while scanning: whether it lies on the main line, and what it holds so far."""

    main: bool
    nodes: int = 0
    children: int = 0


def _main_line(text: str, start: int) -> list[Node]:
    """Scan the game tree at ``start`` iteratively (no recursion, so nesting depth is limited only by
    memory); keep the main line (the first variation at every branch), check every variation."""
    nodes: list[Node] = []
    stack: list[_Tree] = []
    node: Node | None = None  # the node whose properties are being read
    kept = 0  # values stored from the main line
    i = start
    while True:
        m = _TOKEN.match(text, i)
        at = m.start("punct") if m.group("punct") else m.end()
        i = m.end()
        punct = m.group("punct")
        if punct == "(":
            stack.append(_open(stack, at))
            node = None
        elif punct == ";":
            if not stack or stack[-1].children:
                raise InputError(f"malformed SGF: a ';' node at character {at} follows a variation")
            node = []
            stack[-1].nodes += 1
            if stack[-1].main:
                nodes.append(node)
                kept = _count_kept(kept, 1)
        elif punct == ")":
            if not stack.pop().nodes:
                raise InputError(f"malformed SGF: the game tree closed at character {at} has no ';' node")
            node = None
            if not stack:
                return nodes
        elif m.group("ident"):
            _property(text, m, node)
            if stack[-1].main:
                kept = _count_kept(kept, len(node[-1][1]))
        elif m.group("other") is not None:
            raise InputError(
                f"malformed SGF: expected ';', '(' or ')' at character {m.start('other')}, found {m.group('other')!r}"
            )
        else:
            raise InputError(
                "malformed SGF: the game tree is not closed (expected ')' before the end of the file)"
            )


def _count_kept(kept: int, more: int) -> int:
    kept += more
    if kept > MAX_MAIN_LINE_VALUES:
        raise InputError(f"SGF main line has more than {MAX_MAIN_LINE_VALUES:,} nodes and property values")
    return kept


def _open(stack: list[_Tree], at: int) -> _Tree:
    if not stack:
        return _Tree(main=True)
    parent = stack[-1]
    if not parent.nodes:
        raise InputError(f"malformed SGF: a game tree at character {at} has no ';' node")
    parent.children += 1
    return _Tree(main=parent.main and parent.children == 1)


def _property(text: str, m: re.Match, node: Node | None) -> None:
    """Add the property matched by ``m`` to ``node`` (FF[3] lower-case letters in names are dropped)."""
    raw, start = m.group("ident"), m.start("ident")
    ident = "".join(c for c in raw if c.isupper())
    if node is None:
        raise InputError(f"malformed SGF: property {raw[:20]!r} at character {start} is outside a ';' node")
    if not ident:
        raise InputError(f"malformed SGF: property {raw[:20]!r} at character {start} has no capital letters")
    if not m.group("values"):
        rest = text[m.end() :].lstrip()
        if rest.startswith("["):
            raise InputError(
                f"malformed SGF: the value of {ident[:20]} at character {start} is not closed with ']'"
            )
        raise InputError(f"malformed SGF: property {ident[:20]} at character {start} has no [value]")
    node.append((ident, [_ESCAPE.sub(r"\1", v) for v in _VALUE.findall(m.group("values"))]))


def _tokenize(text: str) -> list[Node]:
    """Nodes of the main line: each a list of (property, values)."""
    start = text.find("(")
    if start < 0:
        raise InputError(
            "not an SGF file: no '(' starts a game tree (an SGF game looks like '(;GM[1]SZ[9];B[cc])')"
        )
    return _main_line(text, start)


def _root_size(root: dict[str, list[str]]) -> int:
    size_text = root.get("SZ", ["19"])[0].split(":")[0].strip()
    if not (size_text.isascii() and size_text.isdigit()) or len(size_text) > 3:
        raise InputError(f"SGF SZ[{root['SZ'][0]}] is not a board size")
    size = int(size_text)
    if not 2 <= size <= 19:
        raise InputError(f"SGF board size {size} is not supported (2..19)")
    return size


def _root_komi(root: dict[str, list[str]]) -> float:
    text = root.get("KM", ["7.5"])[0].strip() or "7.5"
    return check_komi(text, f"SGF KM[{text[:40]}]")


def _add_setup(game: SGFGame, setup: dict[int, int], ident: str, values: list[str], where: str) -> None:
    n = game.size
    for v in values:
        for p in _points(v, n, where):
            if p == n * n:
                raise InputError(f"SGF {where}: [{v}] is a pass, not a point to set up")
            if ident == "AE":
                setup.pop(p, None)
            else:
                setup.pop(p, None)  # re-inserted last, so the latest property wins
                setup[p] = BLACK if ident == "AB" else WHITE


def parse_sgf(text: str) -> SGFGame:
    """Parse SGF text (main line). Raises InputError for malformed files or illegal moves."""
    if not isinstance(text, str):
        raise InputError("SGF must be text")
    if len(text) > MAX_SGF_CHARS:
        raise InputError(f"SGF text has {len(text):,} characters; the limit is {MAX_SGF_CHARS:,}")
    nodes = _tokenize(text)
    root = dict(nodes[0])
    gm = root.get("GM", ["1"])[0].strip()
    if gm not in ("", "1"):
        raise InputError(f"SGF game type GM[{gm[:40]}] is not Go (GM[1])")
    game = SGFGame(size=_root_size(root), komi=_root_komi(root))
    for key in ("PB", "PW", "RE", "RU", "DT", "GN", "C"):
        if key in root:
            game.properties[key] = root[key][0]
    setup: dict[int, int] = {}
    for idx, node in enumerate(nodes):
        for ident, values in node:
            where = f"node {idx} {ident}"
            if ident in ("B", "W"):
                color = BLACK if ident == "B" else WHITE
                game.moves.append((color, _point(values[0], game.size, where)))
            elif ident in ("AB", "AW", "AE"):
                _add_setup(game, setup, ident, values, where)
            elif ident == "PL" and idx == 0:
                game.first_player = _player(values[0], where)
    game.setup_black = [p for p, c in setup.items() if c == BLACK]
    game.setup_white = [p for p, c in setup.items() if c == WHITE]
    game.board_at()  # validates the setup and every move
    return game


def _player(value: str, where: str) -> int:
    v = value.strip().upper()
    if v in ("B", "BLACK"):
        return BLACK
    if v in ("W", "WHITE"):
        return WHITE
    raise InputError(f"SGF {where}: [{value[:40]}] is not a colour (B or W)")


def read_sgf(path: str | Path) -> SGFGame:
    """Parse an SGF file (UTF-8, else Latin-1); a missing, unreadable or oversized file is an InputError."""
    p = Path(path)
    try:
        if not p.is_file():
            raise InputError(f"SGF file {p} does not exist" if not p.exists() else f"{p} is not a file")
        with open(p, "rb") as fh:
            data = fh.read(MAX_SGF_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read SGF file {p}: {exc.strerror or exc}") from exc
    if len(data) > MAX_SGF_BYTES:
        raise InputError(
            f"SGF file {p} is larger than {MAX_SGF_BYTES // (1024 * 1024)} MB; is it an SGF game?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
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
    setup_black: Sequence[int] = (),
    setup_white: Sequence[int] = (),
    first_player: int | None = None,
) -> str:
    """SGF text for a game from its moves (``(colour, move)`` pairs, or bare moves alternating from
    black), with optional setup stones and player to move in the root."""
    props = f"GM[1]FF[4]CA[UTF-8]AP[deepapps]SZ[{size}]KM[{komi:g}]RU[Chinese]"
    for ident, points in (("AB", setup_black), ("AW", setup_white)):
        if points:
            props += ident + "".join(f"[{_sgf_point(p, size)}]" for p in points)
    if first_player is not None:
        props += f"PL[{'B' if first_player == BLACK else 'W'}]"
    if black:
        props += f"PB[{_escape(black)}]"
    if white:
        props += f"PW[{_escape(white)}]"
    if result:
        props += f"RE[{_escape(result)}]"
    parts = [f"(;{props}"]
    color = BLACK if first_player is None else first_player
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
