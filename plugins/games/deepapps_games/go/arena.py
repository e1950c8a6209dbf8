"""Matches against GNU Go (over GTP) or the random player, alternating colours, with a Wilson CI.

GNU Go runs as ``gnugo --mode gtp --level L --chinese-rules --capture-all-dead``; games are scored
by our board (Tromp-Taylor area scoring: play continues until both sides pass, so dead stones must
be captured). ``--capture-all-dead`` makes GNU Go play under those conditions: without it, it passes
with dead enemy stones still inside its area, which Tromp-Taylor scoring then counts as alive.
GNU Go resigning counts as our win. A game that reaches the move cap (``3·N²`` moves, e.g. when
one side keeps throwing stones into the other's area) is scored as it stands and counted in
``capped_games`` so such results can be discounted. ``workers > 1`` (or ``ray_address`` /
``RAY_ADDRESS``) plays games on Ray actors, each loading the network once; every game is seeded on
its own (``seed + game``), so the results equal those of one process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepapps import InputError

from .board import BLACK, Board, gtp_to_move, move_to_gtp

GNUGO_PATHS = ("/usr/games/gnugo", "/usr/bin/gnugo", "/usr/local/bin/gnugo")
OPPONENTS = ("gnugo", "random")


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


@dataclass(frozen=True)
class Match:
    """One arena's settings (picklable: Ray workers get it as is)."""

    model: Any  # the core's ModelRef
    opponent: str
    level: int
    size: int
    komi: float
    visits: int
    seed: int
    sgf_dir: str | None
    sample_moves: int
    device: str
    precision: str

    def our_player(self):
        """Our engine: the network through ``deepapps.load`` (loaded once per process and shared
        with anything else in it that asks for the same model) and a fresh search."""
        import deepapps

        from ..plugin import RUN_BATCH
        from .selfplay import MCTSPlayer

        runner = deepapps.load("go", self.model, device=self.device, precision=self.precision)
        return MCTSPlayer(runner.evaluator, visits=self.visits, batch=RUN_BATCH, name=runner.model_name)

    def opponent_player(self, seed: int):
        from .selfplay import RandomPlayer

        if self.opponent == "gnugo":
            return GnuGoPlayer(level=self.level, size=self.size, komi=self.komi, seed=seed)
        return RandomPlayer(seed)

    def play(self, ours, seed: int, games: list[int]) -> list[dict[str, Any]]:
        """Play ``games`` (indices: our engine is black in the even ones) against a fresh
        opponent, our opening sampled from ``seed``; optionally save each game as SGF."""
        import numpy as np

        from .sgf import write_sgf

        ours.temperature_moves = self.sample_moves  # our first moves sampled by visit count: variety
        ours.rng = ours.mcts.rng = np.random.default_rng(seed)
        theirs = self.opponent_player(seed)
        out = []
        try:
            for g in games:
                rec = play_arena_game(ours, theirs, ours_black=(g % 2 == 0), size=self.size, komi=self.komi)
                rec["game"] = g
                if self.sgf_dir:
                    names = (ours.name, getattr(theirs, "name", self.opponent))
                    b, w = names if rec["ours_black"] else names[::-1]
                    Path(self.sgf_dir).mkdir(parents=True, exist_ok=True)
                    sgf = write_sgf(rec["moves"], self.size, self.komi, rec["result"], b, w)
                    (Path(self.sgf_dir) / f"game_{g:04d}.sgf").write_text(sgf)
                rec["moves"] = tuple(rec["moves"])
                out.append(rec)
        finally:
            if hasattr(theirs, "close"):
                theirs.close()
        return out


def _play_in_process(match: Match, games: int, show_progress: bool) -> list[dict[str, Any]]:
    """All games here with one network; game ``g`` seeds our engine and a fresh opponent with seed + g."""
    from deepapps.runtime import progress, set_threads

    set_threads(1)
    ours = match.our_player()
    records: list[dict[str, Any]] = []
    bar = progress(total=games, desc=f"vs {match.opponent}", unit="game", disable=not show_progress)
    for g in range(games):
        records += match.play(ours, match.seed + g, [g])
        bar.update(1)
        bar.set_postfix(wins=sum(r["won"] for r in records))
    bar.close()
    return records


class ArenaWorker:
    """A Ray actor playing arena games: our network loaded once, a fresh opponent per game."""

    def __init__(self, match: Match) -> None:
        from deepapps.runtime import set_threads

        set_threads(1)
        self.match = match
        self.ours = match.our_player()

    def play(self, game: int) -> dict[str, Any]:
        """Game ``game`` exactly as :func:`_play_in_process` plays it (seed ``match.seed + game``)."""
        return self.match.play(self.ours, self.match.seed + game, [game])[0]


def _play_on_ray(
    match: Match, games: int, workers: int | None, ray_address: str | None, show_progress: bool
) -> list[dict[str, Any]]:
    """Games dealt to Ray actors as they free up; each game is seeded alone, so the records equal
    the in-process ones whatever the order. A worker that dies is restarted and its game replayed."""
    from deepapps.runtime import progress
    from deepapps.runtime.cluster import cluster_cpus, ray_session

    with ray_session(ray_address, num_cpus=workers) as ray:
        count = max(1, min(workers or cluster_cpus(ray), games))
        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=2)(ArenaWorker)
        actors = [actor.remote(match) for _ in range(count)]
        todo = list(range(games))
        in_flight = {actors[i].play.remote(todo.pop(0)): actors[i] for i in range(count)}
        records: list[dict[str, Any]] = []
        bar = progress(total=games, desc=f"vs {match.opponent}", unit="game", disable=not show_progress)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            worker = in_flight.pop(ready[0])
            records.append(ray.get(ready[0]))
            if todo:
                in_flight[worker.play.remote(todo.pop(0))] = worker
            bar.update(1)
        bar.close()
        for a in actors:
            ray.kill(a)
    return records


def run_arena(
    model: Any,
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
    device: str = "cpu",
    precision: str = "fp32",
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Play ``games`` games (our engine black in even-numbered games); report wins with a Wilson 95% CI.

    ``model`` is the core's ModelRef (a name or path from Python goes through the core's resolver
    once, here). Both engines are deterministic at a fixed seed (GNU Go's ``--seed`` barely
    changes its play), so repeated games would be copies: while the game is shorter than
    ``sample_moves`` moves, our engine samples its moves in proportion to visit counts
    (temperature 1; 4 = our first two moves), and the report counts ``distinct_games``.
    ``size``/``komi`` default to the model's, read from its metadata: the network is loaded only
    by the processes that play (here when ``workers`` is 1, else once in each Ray worker).
    """
    from deepapps.resolution import resolve_model
    from deepapps.runtime.cluster import resolve_address

    from .runner import model_info

    if games < 1:
        raise InputError("--games must be at least 1")
    if opponent not in OPPONENTS:
        raise InputError(f"unknown opponent {opponent!r}: use {' or '.join(OPPONENTS)}")
    if opponent == "gnugo" and find_gnugo() is None:
        raise InputError("GNU Go is not installed: `apt-get install gnugo` (binary /usr/games/gnugo)")
    ref = resolve_model("go", model)
    model_size, model_komi = model_info(ref) if size is None or komi is None else (size, komi)
    size = model_size if size is None else size
    komi = model_komi if komi is None else komi
    match = Match(ref, opponent, level, size, komi, visits, seed, sgf_dir, sample_moves, device, precision)
    t0 = time.perf_counter()
    workers = max(1, min(workers, games))
    if workers == 1 and not resolve_address(ray_address):
        records = _play_in_process(match, games, show_progress)
    else:
        records = _play_on_ray(match, games, workers, ray_address, show_progress)
    return _report(match, games, records, t0)


def _report(match: Match, games: int, records: list[dict[str, Any]], t0: float) -> dict[str, Any]:
    from .selfplay import wilson

    wins = sum(r["won"] for r in records)
    lo, hi = wilson(wins, games)
    return {
        "model": match.model.name,
        "opponent": match.opponent if match.opponent != "gnugo" else f"gnugo level {match.level}",
        "size": match.size,
        "komi": match.komi,
        "visits": match.visits,
        "games": games,
        "wins": wins,
        "win_rate": wins / games,
        "ci95": [round(lo, 4), round(hi, 4)],
        "wins_as_black": sum(r["won"] for r in records if r["ours_black"]),
        "wins_as_white": sum(r["won"] for r in records if not r["ours_black"]),
        "mean_length": sum(r["length"] for r in records) / games,
        "sample_moves": match.sample_moves,
        "distinct_games": len({r["moves"] for r in records}),
        "capped_games": sum(r["capped"] for r in records),
        "capped_wins": sum(r["capped"] and r["won"] for r in records),
        "results": sorted((r["game"], r["result"]) for r in records),
        "seconds": round(time.perf_counter() - t0, 1),
    }
