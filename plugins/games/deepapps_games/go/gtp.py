"""A GTP (Go Text Protocol, version 2) engine around an :class:`MCTSPlayer`.

Commands: protocol_version, name, version, known_command, list_commands, quit, boardsize,
clear_board, komi, play, genmove, undo, showboard, final_score, plus loadsgf, printsgf,
time_settings/time_left (accepted, ignored) and ``deepapps-analyze [VISITS]`` (win rate + top
moves; at most ``mcts.MAX_VISITS`` = 10,000 visits per command).
Bad input gets a ``? message`` reply and the engine keeps running.

``loadsgf FILE [MOVE_NUMBER]`` follows GTP 2: the file's board size, komi, setup stones (AB/AW)
and player to move (PL) are loaded, then the main line is replayed up to the position *before*
move MOVE_NUMBER (moves count from 1, so ``loadsgf f 1`` is the setup position and
``loadsgf f 10`` plays 9 moves); without MOVE_NUMBER every move is played.
"""

from __future__ import annotations

from typing import IO, Any

from deepapps.errors import InputError

from .board import BLACK, WHITE, Board, IllegalMoveError, check_komi, gtp_to_move, move_to_gtp

MAX_LINE = 4096  # longer command lines are refused (no legal GTP command needs more)

VERSION = "0.1.0"


class GTPError(Exception):
    """Answered as ``? message``."""


def load_player(model: str, visits: int = 200, batch: int = 8, precision: str = "fp32"):
    """An MCTSPlayer for a registered model name or a .safetensors path, and its metadata
    (``precision="bf16"``: see :class:`~deepapps_games.go.net.Evaluator`)."""
    from .net import Evaluator
    from .runner import load_model, model_defaults
    from .selfplay import MCTSPlayer

    net, meta = load_model(model)
    size, komi = model_defaults(meta)
    player = MCTSPlayer(Evaluator(net, precision=precision), visits=visits, batch=batch, name=str(model))
    return player, {
        **meta,
        "size": size,
        "komi": komi,
    }


def _count(text: str, what: str, low: int, high: int) -> int:
    """A decimal integer argument in ``low..high`` (ASCII digits only: int() also takes '٣')."""
    if not (text.isascii() and text.isdigit()) or not low <= _leading(text) <= high:
        raise GTPError(f"{what} must be an integer from {low:,} to {high:,}, got {text[:40]!r}")
    return int(text)


def _leading(digits: str) -> int:
    """The value of a digit string, saturated past 12 digits (no slow huge-int parsing)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 12 else 10**12


def _color(text: str) -> int:
    t = text.strip().lower()
    if t in ("b", "black"):
        return BLACK
    if t in ("w", "white"):
        return WHITE
    raise GTPError(f"invalid color {text!r} (use b/black or w/white)")


class GTPEngine:
    """Stateful GTP interpreter: ``handle(line)`` returns the full reply (``= ...`` or ``? ...``)."""

    def __init__(self, player: Any, size: int = 7, komi: float = 7.5, name: str = "deepapps-go") -> None:
        self.player = player
        self.name = name
        self.komi = check_komi(komi)
        self.size = size
        self.setup: tuple[list[int], list[int], int] = ([], [], BLACK)  # AB, AW, first player (loadsgf)
        self.board = self._new_board(size)
        self.history: list[Board] = []
        self.moves: list[tuple[int, int]] = []
        self.quit = False
        self.commands = {
            "protocol_version": self.cmd_protocol_version,
            "name": lambda args: self.name,
            "version": lambda args: VERSION,
            "known_command": self.cmd_known_command,
            "list_commands": lambda args: "\n".join(sorted(self.commands)),
            "quit": self.cmd_quit,
            "boardsize": self.cmd_boardsize,
            "clear_board": self.cmd_clear_board,
            "komi": self.cmd_komi,
            "play": self.cmd_play,
            "genmove": self.cmd_genmove,
            "undo": self.cmd_undo,
            "showboard": lambda args: "\n" + str(self.board),
            "final_score": self.cmd_final_score,
            "loadsgf": self.cmd_loadsgf,
            "printsgf": self.cmd_printsgf,
            "time_settings": lambda args: "",
            "time_left": lambda args: "",
            "deepapps-analyze": self.cmd_analyze,
        }

    def _new_board(self, n: int) -> Board:
        b = Board(n, komi=self.komi, max_moves=10 * n * n)
        black, white, first = self.setup
        for p in black:
            b.stones[p] = BLACK
        for p in white:
            b.stones[p] = WHITE
        b.to_play = first
        return b

    # protocol ---------------------------------------------------------------------
    def handle(self, line: str) -> str | None:
        """One command line -> one reply (None for empty/comment lines)."""
        if len(line) > MAX_LINE:
            return f"? command line longer than {MAX_LINE} characters\n\n"
        line = line.split("#", 1)[0].replace("\t", " ")
        line = "".join(ch for ch in line if ord(ch) >= 32 and ord(ch) != 127).strip()
        if not line:
            return None
        parts = line.split()
        cid = ""
        if parts[0].isascii() and parts[0].isdigit():
            cid = parts.pop(0)
            if not parts:
                return f"?{cid} missing command\n\n"
        cmd, args = parts[0].lower(), parts[1:]
        fn = self.commands.get(cmd)
        if fn is None:
            return f"?{cid} unknown command\n\n"
        try:
            out = fn(args)
        except (GTPError, InputError) as exc:
            return f"?{cid} {_one_line(exc)}\n\n"
        except Exception as exc:  # keep running whatever happens
            return f"?{cid} internal error: {type(exc).__name__}: {_one_line(exc)}\n\n"
        return f"={cid} {out}".rstrip(" ") + "\n\n" if out else f"={cid}\n\n"

    def serve(self, stdin: IO[str], stdout: IO[str]) -> None:
        for line in stdin:
            reply = self.handle(line)
            if reply is not None:
                stdout.write(reply)
                stdout.flush()
            if self.quit:
                break

    # commands ---------------------------------------------------------------------
    def cmd_protocol_version(self, args: list[str]) -> str:
        return "2"

    def cmd_known_command(self, args: list[str]) -> str:
        if not args:
            raise GTPError("known_command needs a command name")
        return "true" if args[0].lower() in self.commands else "false"

    def cmd_quit(self, args: list[str]) -> str:
        self.quit = True
        return ""

    def cmd_boardsize(self, args: list[str]) -> str:
        if len(args) != 1 or not (args[0].isascii() and args[0].isdigit()):
            raise GTPError("boardsize needs one integer")
        if not 5 <= _leading(args[0]) <= 19:
            raise GTPError("unacceptable size (this engine plays 5x5 to 19x19)")
        self.size = int(args[0])
        return self.cmd_clear_board([])

    def cmd_clear_board(self, args: list[str]) -> str:
        self.setup = ([], [], BLACK)
        self._restart()
        return ""

    def _restart(self) -> None:
        """An empty history from the current setup (clear_board, loadsgf)."""
        self.board = self._new_board(self.size)
        self.history.clear()
        self.moves.clear()
        self.player.reset()

    def cmd_komi(self, args: list[str]) -> str:
        if len(args) != 1:
            raise GTPError("komi needs one number, e.g. 'komi 7.5'")
        self.komi = check_komi(args[0][:40])
        self.board.komi = self.komi
        self.player.reset()
        return ""

    def _apply(self, color: int, move: int) -> None:
        before = self.board.copy()
        b = self.board
        if color != b.to_play:  # consecutive moves by one colour (handicap setups, GUIs editing)
            b.to_play = color
            b.ko = -1
        try:
            b.play(move)
        except IllegalMoveError as exc:
            self.board = before
            raise GTPError(f"illegal move: {exc}") from exc
        self.history.append(before)
        self.moves.append((color, move))
        if before.to_play == color:
            self.player.observe(before, move)
        else:
            self.player.reset()

    def cmd_play(self, args: list[str]) -> str:
        if len(args) != 2:
            raise GTPError("play needs a color and a vertex, e.g. 'play b C3'")
        color = _color(args[0])
        try:
            move = gtp_to_move(args[1], self.size)
        except ValueError as exc:
            raise GTPError(f"invalid coordinate: {exc}") from exc
        self._apply(color, move)
        return ""

    def cmd_genmove(self, args: list[str]) -> str:
        if len(args) != 1:
            raise GTPError("genmove needs a color")
        color = _color(args[0])
        if color != self.board.to_play:
            self.board.to_play = color
            self.board.ko = -1
            self.player.reset()
        move = self.player.genmove(self.board)
        self._apply(color, move)
        return move_to_gtp(move, self.size)

    def cmd_undo(self, args: list[str]) -> str:
        if not self.history:
            raise GTPError("cannot undo")
        self.board = self.history.pop()
        self.moves.pop()
        self.player.reset()
        return ""

    def cmd_final_score(self, args: list[str]) -> str:
        s = self.board.score()
        if s == 0:
            return "0"
        return f"B+{s:g}" if s > 0 else f"W+{-s:g}"

    def cmd_loadsgf(self, args: list[str]) -> str:
        from deepapps import InputError

        from .sgf import read_sgf

        if not 1 <= len(args) <= 2:
            raise GTPError(
                "loadsgf needs a file name and optionally a move number, e.g. 'loadsgf game.sgf 10'"
            )
        upto = (
            _count(
                args[1], "loadsgf's move number (the next move to play; 1 = before the first move)", 1, 10**9
            )
            if len(args) == 2
            else None
        )
        try:
            game = read_sgf(args[0])
        except InputError as exc:
            raise GTPError(f"cannot load SGF: {_one_line(exc)}") from exc
        if not 5 <= game.size <= 19:
            raise GTPError("unacceptable size (this engine plays 5x5 to 19x19)")
        first = game.first_player or (game.moves[0][0] if game.moves else BLACK)
        self.size, self.komi = game.size, game.komi
        self.setup = (list(game.setup_black), list(game.setup_white), first)
        self._restart()
        for color, mv in game.moves[: None if upto is None else upto - 1]:
            self._apply(color, mv)
        return ""

    def cmd_printsgf(self, args: list[str]) -> str:
        from .sgf import write_sgf

        black, white, first = self.setup
        text = write_sgf(
            self.moves,
            self.size,
            self.komi,
            black=self.name,
            white=self.name,
            setup_black=black,
            setup_white=white,
            first_player=first if (black or white) else None,
        )
        return "\n" + text.strip()

    def cmd_analyze(self, args: list[str]) -> str:
        from .mcts import MAX_VISITS

        if len(args) > 1:
            raise GTPError("deepapps-analyze takes at most one argument (visits)")
        visits = _count(args[0], "visits", 1, MAX_VISITS) if args else None
        res = self.player.analyse(self.board, visits=visits)
        tops = " ".join(f"{m['move']}:{m['visits']}:{m['winrate']:.3f}" for m in res.top(5))
        return f"winrate {(res.value + 1) / 2:.4f} visits {res.total_visits} top {tops}"


def _one_line(exc: BaseException) -> str:
    """An error message on one line (a GTP reply ends at the first empty line)."""
    return " ".join(str(exc).split())[:500]
