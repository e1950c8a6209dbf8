"""Matches against GNU Go (over GTP) or the random player, alternating colours, with a Wilson CI.

GNU Go runs as ``gnugo --mode gtp --level L --chinese-rules --capture-all-dead``; games are scored
by our board (Tromp-Taylor area scoring: play continues until both sides pass, so dead stones must
be captured). ``--capture-all-dead`` makes GNU Go play under those conditions: without it, it passes
with dead enemy stones still inside its area, which Tromp-Taylor scoring then counts as alive.
GNU Go resigning counts as our win. A game that reaches the move cap (``3·N²`` moves, e.g. when
one side keeps throwing stones into the other's area) is scored as it stands and counted in
``capped_games`` so such results can be discounted. ``workers > 1`` plays games in parallel processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from deepapps import InputError

from .board import BLACK, Board, gtp_to_move, move_to_gtp

GNUGO_PATHS = ("/usr/games/gnugo", "/usr/bin/gnugo", "/usr/local/bin/gnugo")


def find_gnugo() -> str | None:
    """Path of the gnugo binary (Debian puts it in /usr/games, outside root's PATH), or None."""
    env = os.environ.get("GNUGO")
    if env and Path(env).exists():
        return env
    found = shutil.which("gnugo")
    if found:
        return found
    for p in GNUGO_PATHS:
        if Path(p).exists():
            return p
    return None


class GTPClient:
    """A GTP engine in a subprocess (e.g. GNU Go)."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )

    def send(self, command: str) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                raise RuntimeError(f"GTP engine exited while answering {command!r}")
            if line.strip() == "" and lines:
                break
            if line.strip() == "" and not lines:
                continue
            lines.append(line.rstrip("\n"))
        text = "\n".join(lines)
        if text.startswith("?"):
            raise RuntimeError(f"GTP engine refused {command!r}: {text}")
        return text[1:].strip()

    def close(self) -> None:
        try:
            self.send("quit")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class GnuGoPlayer:
    """GNU Go as a player object (same interface as MCTSPlayer/RandomPlayer)."""

    def __init__(
        self,
        level: int = 1,
        size: int = 7,
        komi: float = 7.5,
        seed: int = 0,
        binary: str | None = None,
        never_resign: bool = False,
    ) -> None:
        path = binary or find_gnugo()
        if path is None:
            raise InputError("GNU Go is not installed: `apt-get install gnugo` (binary /usr/games/gnugo)")
        self.name = f"gnugo-level{level}"
        self.client = GTPClient(
            [
                path,
                "--mode",
                "gtp",
                "--level",
                str(level),
                "--chinese-rules",
                "--capture-all-dead",
                "--seed",
                str(seed),
            ]
            + (["--never-resign"] if never_resign else [])
        )
        self.size, self.komi = size, komi
        self.resigned = False

    def reset(self) -> None:
        self.client.send(f"boardsize {self.size}")
        self.client.send("clear_board")
        self.client.send(f"komi {self.komi}")
        self.resigned = False

    def genmove(self, board: Board) -> int:
        color = "black" if board.to_play == BLACK else "white"
        reply = self.client.send(f"genmove {color}")
        if reply.lower() == "resign":
            self.resigned = True
            return -1
        self._own = True
        return gtp_to_move(reply, board.n)

    def observe(self, board: Board, move: int) -> None:
        if getattr(self, "_own", False):
            self._own = False  # GNU Go already played its own move
            return
        color = "black" if board.to_play == BLACK else "white"
        self.client.send(f"play {color} {move_to_gtp(move, board.n)}")

    def close(self) -> None:
        self.client.close()


def play_arena_game(ours, theirs, ours_black: bool, size: int, komi: float) -> dict[str, Any]:
    """One game; returns the winner from our side, the score and the moves."""
    board = Board(size, komi=komi)
    ours.reset()
    theirs.reset()
    moves: list[int] = []
    resigned = None
    while not board.is_over():
        mine = (board.to_play == BLACK) == ours_black
        player = ours if mine else theirs
        move = player.genmove(board)
        if move == -1:  # resignation
            resigned = "them" if not mine else "us"
            break
        before = board.copy()
        board.play(move)
        moves.append(move)
        ours.observe(before, move)
        theirs.observe(before, move)
    if resigned:
        won = resigned == "them"
        result = ("B" if (won == ours_black) else "W") + "+R"
    else:
        won = (board.winner() == BLACK) == ours_black
        s = board.score()
        result = f"B+{s:g}" if s > 0 else f"W+{-s:g}"
    capped = resigned is None and board.passes < 2  # stopped by the move cap, scored as it stood
    return {
        "capped": capped,
        "won": bool(won),
        "ours_black": ours_black,
        "result": result,
        "moves": moves,
        "length": len(moves),
    }


def _play_many(args: tuple) -> list[dict[str, Any]]:
    model, opponent, level, indices, size, komi, visits, seed, sgf_dir, sample_moves = args
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from .gtp import load_player
    from .selfplay import RandomPlayer
    from .sgf import write_sgf

    ours, _ = load_player(model, visits=visits)
    ours.temperature_moves = sample_moves  # our first moves are sampled by visit count: variety
    ours.rng = ours.mcts.rng = np.random.default_rng(seed)
    if opponent == "gnugo":
        theirs = GnuGoPlayer(level=level, size=size, komi=komi, seed=seed)
    elif opponent == "random":
        theirs = RandomPlayer(seed)
    else:
        raise InputError(f"unknown opponent {opponent!r}: use gnugo or random")
    out = []
    try:
        for g in indices:
            rec = play_arena_game(ours, theirs, ours_black=(g % 2 == 0), size=size, komi=komi)
            rec["game"] = g
            if sgf_dir:
                names = (str(model), getattr(theirs, "name", opponent))
                b, w = names if rec["ours_black"] else names[::-1]
                Path(sgf_dir).mkdir(parents=True, exist_ok=True)
                (Path(sgf_dir) / f"game_{g:04d}.sgf").write_text(
                    write_sgf(rec["moves"], size, komi, rec["result"], b, w)
                )
            rec["moves"] = tuple(rec["moves"])
            out.append(rec)
    finally:
        if hasattr(theirs, "close"):
            theirs.close()
    return out


def run_arena(
    model: str = "go-7x7",
    opponent: str = "gnugo",
    level: int = 1,
    games: int = 20,
    size: int | None = None,
    komi: float | None = None,
    visits: int = 200,
    seed: int = 0,
    sgf_dir: str | None = None,
    workers: int = 1,
    show_progress: bool = True,
    sample_moves: int = 4,
) -> dict[str, Any]:
    """Play ``games`` games (our engine black in even-numbered games); report wins with a Wilson 95% CI.

    Both engines are deterministic at a fixed seed (GNU Go's ``--seed`` barely changes its play),
    so repeated games would be copies: while the game is shorter than ``sample_moves`` moves, our
    engine samples its moves in proportion to visit counts (temperature 1; 4 = our first two
    moves), and the report counts ``distinct_games``. ``size``/``komi`` default to the model's.
    """
    from deepapps.runtime import progress

    from .selfplay import wilson

    if games < 1:
        raise InputError("--games must be at least 1")
    if size is None or komi is None:
        from .runner import load_model, model_defaults

        model_size, model_komi = model_defaults(load_model(model)[1])
        size = model_size if size is None else size
        komi = model_komi if komi is None else komi
    if opponent == "gnugo" and find_gnugo() is None:
        raise InputError("GNU Go is not installed: `apt-get install gnugo` (binary /usr/games/gnugo)")
    t0 = time.perf_counter()
    workers = max(1, min(workers, games))
    chunks = [list(range(i, games, workers)) for i in range(workers)]
    records: list[dict[str, Any]] = []
    if workers == 1:
        bar = progress(total=games, desc=f"vs {opponent}", unit="game", disable=not show_progress)
        for g in range(games):
            records += _play_many(
                (model, opponent, level, [g], size, komi, visits, seed + g, sgf_dir, sample_moves)
            )
            bar.update(1)
            bar.set_postfix(wins=sum(r["won"] for r in records))
        bar.close()
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for part in pool.imap_unordered(
                _play_many,
                [
                    (model, opponent, level, c, size, komi, visits, seed + 1000 * i, sgf_dir, sample_moves)
                    for i, c in enumerate(chunks)
                ],
            ):
                records += part
    wins = sum(r["won"] for r in records)
    lo, hi = wilson(wins, games)
    return {
        "model": str(model),
        "opponent": opponent if opponent != "gnugo" else f"gnugo level {level}",
        "size": size,
        "komi": komi,
        "visits": visits,
        "games": games,
        "wins": wins,
        "win_rate": wins / games,
        "ci95": [round(lo, 4), round(hi, 4)],
        "wins_as_black": sum(r["won"] for r in records if r["ours_black"]),
        "wins_as_white": sum(r["won"] for r in records if not r["ours_black"]),
        "mean_length": sum(r["length"] for r in records) / games,
        "sample_moves": sample_moves,
        "distinct_games": len({r["moves"] for r in records}),
        "capped_games": sum(r["capped"] for r in records),
        "capped_wins": sum(r["capped"] and r["won"] for r in records),
        "results": sorted((r["game"], r["result"]) for r in records),
        "seconds": round(time.perf_counter() - t0, 1),
    }
