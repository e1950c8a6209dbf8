"""A GTP (Go Text Protocol, version 2) engine around an :class:`MCTSPlayer`.

Commands: protocol_version, name, version, known_command, list_commands, quit, boardsize,
clear_board, komi, play, genmove, undo, showboard, final_score, plus loadsgf, printsgf,
time_settings/time_left (accepted, ignored) and ``deepapps-analyze`` (win rate + top moves).
Bad input gets a ``? message`` reply and the engine keeps running.
"""

from __future__ import annotations

from typing import IO, Any

from .board import BLACK, WHITE, Board, IllegalMoveError, gtp_to_move, move_to_gtp

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
        self.komi = float(komi)
        self.size = size
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
        return Board(n, komi=self.komi, max_moves=10 * n * n)

    # protocol ---------------------------------------------------------------------
    def handle(self, line: str) -> str | None:
        """One command line -> one reply (None for empty/comment lines)."""
        line = line.split("#", 1)[0].replace("\t", " ").strip()
        line = "".join(ch for ch in line if ch == "\n" or ord(ch) >= 32)
        if not line:
            return None
        parts = line.split()
        cid = ""
        if parts[0].isdigit():
            cid = parts.pop(0)
            if not parts:
                return f"?{cid} missing command\n\n"
        cmd, args = parts[0].lower(), parts[1:]
        fn = self.commands.get(cmd)
        if fn is None:
            return f"?{cid} unknown command\n\n"
        try:
            out = fn(args)
        except GTPError as exc:
            return f"?{cid} {exc}\n\n"
        except Exception as exc:  # keep running whatever happens
            return f"?{cid} internal error: {type(exc).__name__}: {exc}\n\n"
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
        if len(args) != 1 or not args[0].isdigit():
            raise GTPError("boardsize needs one integer")
        n = int(args[0])
        if not 5 <= n <= 19:
            raise GTPError("unacceptable size (this engine plays 5x5 to 19x19)")
        self.size = n
        return self.cmd_clear_board([])

    def cmd_clear_board(self, args: list[str]) -> str:
        self.board = self._new_board(self.size)
        self.history.clear()
        self.moves.clear()
        self.player.reset()
        return ""

    def cmd_komi(self, args: list[str]) -> str:
        try:
            self.komi = float(args[0])
        except (IndexError, ValueError) as exc:
            raise GTPError("komi needs a number") from exc
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

        if not args:
            raise GTPError("loadsgf needs a file name")
        try:
            game = read_sgf(args[0])
        except InputError as exc:
            raise GTPError(f"cannot load SGF: {exc}") from exc
        if not 5 <= game.size <= 19:
            raise GTPError("unacceptable size")
        upto = int(args[1]) - 1 if len(args) > 1 and args[1].isdigit() else None
        self.size = game.size
        self.komi = game.komi
        self.cmd_clear_board([])
        for color, mv in game.moves[:upto]:
            self._apply(color, mv)
        return ""

    def cmd_printsgf(self, args: list[str]) -> str:
        from .sgf import write_sgf

        return "\n" + write_sgf(self.moves, self.size, self.komi, black=self.name, white=self.name).strip()

    def cmd_analyze(self, args: list[str]) -> str:
        visits = int(args[0]) if args and args[0].isdigit() else None
        res = self.player.analyse(self.board, visits=visits)
        tops = " ".join(f"{m['move']}:{m['visits']}:{m['winrate']:.3f}" for m in res.top(5))
        return f"winrate {(res.value + 1) / 2:.4f} visits {res.total_visits} top {tops}"
