"""Supervised start from GNU Go's games (AlphaGo's first stage, with GNU Go as the expert).

AlphaGo first trained its policy network to predict expert moves and only then improved it by
self-play; AlphaGo Zero skipped the first stage. Here GNU Go (a registry package, ``gnugo``) plays
itself, fast at level 1 on 7×7 (8,000 games in 43 minutes here). Every GNU Go move is a policy target (the move
it chose), every position gets the game's outcome (value) and final ownership. Diversity comes
from a few random opening moves and occasional random moves later on (``eps``; those moves are
played but not used as targets), so the value head also sees lopsided positions.

``generate`` writes ``teacher.safetensors`` (planes, moves, outcomes, ownership, game ids);
``pretrain`` fits a fresh network to it, holding out 5% of the games to report move-prediction
accuracy and value error; the result loads everywhere a self-play network does and can seed
self-play (``deepapps train go --init``).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepapps import InputError

from .board import BLACK, Board, IllegalMoveError
from .net import features


def teacher_games(
    games: int,
    size: int = 7,
    komi: float = 7.5,
    levels: tuple[int, ...] = (1,),
    opening: int = 6,
    eps: float = 0.04,
    seed: int = 0,
    game_offset: int = 0,
) -> dict[str, np.ndarray]:
    """Play ``games`` GNU Go self-play games; returns arrays of every position GNU Go moved in."""
    from .arena import GnuGoPlayer
    from .selfplay import RandomPlayer

    rng = random.Random(seed)
    randp = RandomPlayer()
    randp.rng = rng  # one random stream for the game's choices and its random moves
    players: dict[int, GnuGoPlayer] = {}
    cols: dict[str, list] = {"x": [], "move": [], "z": [], "own": [], "game": []}
    lengths = []
    black_wins = 0
    try:
        g = 0
        while g < games:
            level = rng.choice(levels)
            if level not in players:
                players[level] = GnuGoPlayer(level, size, komi, seed=seed * 101 + level, never_resign=True)
            played = _play_teacher_game(players[level], randp, rng, size, komi, opening, eps)
            if played is None:
                continue
            board, recs = played
            _record(cols, board, recs, game_offset + g)
            lengths.append(board.moves)
            black_wins += board.winner() == BLACK
            g += 1
    finally:
        for p in players.values():
            p.close()
    return {
        "x": np.stack(cols["x"]),
        "move": np.asarray(cols["move"], np.int16),
        "z": np.asarray(cols["z"], np.float32),
        "own": np.stack(cols["own"]).astype(np.int8),
        "game": np.asarray(cols["game"], np.int32),
        "lengths": np.asarray(lengths, np.int32),
        "black_wins": np.asarray([black_wins], np.int32),
    }


def _play_teacher_game(gnugo, randp, rng, size: int, komi: float, opening: int, eps: float):
    """One GNU Go self-play game with random openings and moves; (board, [(planes, move, colour)])
    for the moves GNU Go chose, or None when the game has to be dropped."""
    gnugo.reset()
    board = Board(size, komi=komi)
    recs: list[tuple[np.ndarray, int, int]] = []
    n_open = rng.randint(0, opening)
    while not board.is_over():
        if board.moves < n_open or rng.random() < eps:
            move = randp.genmove(board)
        else:
            move = gnugo.genmove(board)
            recs.append((features(board), move, board.to_play))
        gnugo.observe(board, move)  # tells GNU Go the random moves (its own it knows)
        try:
            board.play(move)
        except IllegalMoveError:  # rule mismatch (should not happen): drop the game
            return None
    return (board, recs) if recs else None


def _record(cols: dict[str, list], board: Board, recs: list, game_id: int) -> None:
    """Append a finished game's positions with their value and ownership targets."""
    winner = board.winner()
    owner = np.asarray(board.area(), dtype=np.int8)
    for x, m, col in recs:
        cols["x"].append(x.astype(np.uint8))
        cols["move"].append(m)
        cols["z"].append(1.0 if col == winner else -1.0)
        cols["own"].append(owner * col)
        cols["game"].append(game_id)


def _chunk(args: tuple) -> dict[str, np.ndarray]:
    return teacher_games(*args)


def generate(
    games: int,
    out: str | Path,
    size: int = 7,
    komi: float = 7.5,
    levels: tuple[int, ...] = (1,),
    opening: int = 6,
    eps: float = 0.04,
    seed: int = 0,
    workers: int = 1,
    chunk: int = 200,
    show_progress: bool = True,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Generate ``games`` teacher games on ``workers`` Ray workers (1: in this process); save them as
    safetensors. Chunks carry their own seeds, so the data does not depend on the worker count."""
    import torch

    from deepapps.runtime import save_checkpoint

    if games < 1:
        raise InputError("--games must be at least 1")
    if not 5 <= size <= 19:
        raise InputError(f"--size must be 5..19, got {size}")
    t0 = time.perf_counter()
    jobs = _jobs(games, size, komi, levels, opening, eps, seed, chunk)
    parts = _run_jobs(jobs, games, workers, show_progress, ray_address)
    data = {k: np.concatenate([p[k] for p in parts]) for k in ("x", "move", "z", "own", "game")}
    lengths = np.concatenate([p["lengths"] for p in parts])
    black = int(sum(int(p["black_wins"][0]) for p in parts))
    meta = {
        "kind": "go-teacher-data",
        "size": size,
        "komi": komi,
        "levels": list(levels),
        "opening": opening,
        "eps": eps,
        "seed": seed,
        "games": games,
        "positions": int(len(data["z"])),
        "black_win_rate": round(black / games, 4),
        "mean_length": round(float(lengths.mean()), 2),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, {k: torch.from_numpy(v) for k, v in data.items()}, meta)
    return {**meta, "path": str(out), "seconds": round(time.perf_counter() - t0, 1)}


def _jobs(games, size, komi, levels, opening, eps, seed, chunk) -> list[tuple]:
    """Chunks of at most ``chunk`` games, each with its own seed and game-id offset."""
    jobs = []
    for i, start in enumerate(range(0, games, chunk)):
        n = min(chunk, games - start)
        jobs.append((n, size, komi, tuple(levels), opening, eps, seed * 10_007 + i, start))
    return jobs


def _run_jobs(
    jobs: list[tuple], games: int, workers: int, show_progress: bool, ray_address: str | None = None
) -> list[dict[str, np.ndarray]]:
    """Chunks in this process (one worker, no cluster), else as Ray tasks (local Ray or ``ray_address``)."""
    from deepapps.runtime import progress

    parts: list[dict[str, np.ndarray]] = []
    bar = progress(total=games, desc="GNU Go games", unit="game", disable=not show_progress)
    from deepapps.runtime.cluster import ray_session, resolve_address

    if workers <= 1 and not resolve_address(ray_address):
        for j in jobs:
            parts.append(_chunk(j))
            bar.update(j[0])
    else:
        with ray_session(ray_address, num_cpus=workers) as ray:
            play = ray.remote(num_cpus=1, max_retries=2)(_chunk)
            pending = [play.remote(j) for j in jobs]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                part = ray.get(done[0])
                parts.append(part)
                bar.update(len(part["lengths"]))
    bar.close()
    parts.sort(key=lambda p: int(p["game"][0]) if len(p["game"]) else 0)  # same file whatever the finish order
    return parts


def load_teacher(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from deepapps.errors import CheckpointError
    from deepapps.runtime import load_checkpoint

    tensors, meta = load_checkpoint(path)
    if meta.get("kind") != "go-teacher-data":
        raise CheckpointError(f"{path} is not deepapps Go teacher data (kind={meta.get('kind')!r})")
    return {k: v.numpy() for k, v in tensors.items()}, meta


def _batch(data: dict[str, np.ndarray], idx: np.ndarray, n2: int):
    from .selfplay import Samples

    pi = np.zeros((len(idx), n2 + 1), np.float32)
    pi[np.arange(len(idx)), data["move"][idx].astype(np.int64)] = 1.0
    return Samples(data["x"][idx], pi, data["z"][idx], data["own"][idx])


def held_out_metrics(net, data: dict[str, np.ndarray], idx: np.ndarray, n2: int) -> dict[str, float]:
    """Move-prediction accuracy (top-1, top-3), value MSE and outcome accuracy on positions ``idx``."""
    import torch

    net.eval()
    top1 = top3 = 0
    se = 0.0
    sign = 0
    with torch.inference_mode():
        for s in range(0, len(idx), 2048):
            j = idx[s : s + 2048]
            logits, v, _ = net(torch.from_numpy(data["x"][j].astype(np.float32)))
            target = torch.from_numpy(data["move"][j].astype(np.int64))
            top = logits.topk(3, dim=1).indices
            top1 += int((top[:, 0] == target).sum())
            top3 += int((top == target[:, None]).any(1).sum())
            z = torch.from_numpy(data["z"][j])
            se += float(((v - z) ** 2).sum())
            sign += int(((v > 0) == (z > 0)).sum())
    n = max(len(idx), 1)
    return {
        "move_top1": round(top1 / n, 4),
        "move_top3": round(top3 / n, 4),
        "value_mse": round(se / n, 4),
        "outcome_acc": round(sign / n, 4),
    }


def load_many(paths: list[str | Path]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Concatenate several teacher files of one board size (game ids kept distinct)."""
    datas, metas = zip(*(load_teacher(p) for p in paths), strict=True)
    sizes = {int(m["size"]) for m in metas}
    if len(sizes) != 1:
        raise InputError(f"teacher files mix board sizes {sorted(sizes)}; pretrain one size at a time")
    offset = 0
    parts = []
    for d in datas:
        parts.append({**d, "game": d["game"] + offset})
        offset += int(d["game"].max()) + 1
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    meta = dict(metas[0])
    meta["games"] = sum(int(m["games"]) for m in metas)
    meta["positions"] = int(len(data["z"]))
    meta["levels"] = sorted({lv for m in metas for lv in m["levels"]})
    meta["seed"] = [m["seed"] for m in metas] if len(metas) > 1 else metas[0]["seed"]
    meta["files"] = [Path(p).name for p in paths]
    return data, meta


def pretrain(
    data_path: str | Path | list,
    out_dir: str | Path,
    blocks: int = 4,
    channels: int = 32,
    steps: int = 4000,
    batch: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    ownership_weight: float = 1.0,
    holdout: float = 0.05,
    eval_every: int = 500,
    seed: int = 0,
    threads: int = 1,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fit a fresh network to teacher games (cosine learning rate); holds out whole games."""
    from deepapps.runtime import seed_everything, set_threads
    from deepapps.runtime.training import MetricsLog

    from .net import GoNet, NetConfig

    set_threads(max(1, threads))
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    paths = list(data_path) if isinstance(data_path, (list, tuple)) else [data_path]
    data, meta = load_many(paths)
    size = int(meta["size"])
    train_idx, held_idx, held_games = _hold_out_games(data, holdout, rng)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = GoNet(NetConfig(blocks, channels, True))
    opt, sched = _cosine_adamw(net, lr, weight_decay, steps)
    log = MetricsLog(out)
    fit = _Fit(data, train_idx, held_idx, size * size, batch, ownership_weight, eval_every)
    fit.run(net, opt, sched, rng, steps, log, show_progress)
    log.plot(x="step", title=f"go {size}x{size}: pretraining on GNU Go games")
    info = {
        "size": size,
        "komi": meta["komi"],
        "stage": "supervised on GNU Go self-play games",
        "teacher_data": {k: meta[k] for k in ("levels", "games", "positions", "opening", "eps", "seed")},
        "pretrain": {"steps": steps, "batch": batch, "lr": lr, "held_out_games": held_games},
    }
    return _save_pretrained(out, net, info, log.rows[-1], len(train_idx), len(held_idx))


def _hold_out_games(data: dict[str, np.ndarray], holdout: float, rng) -> tuple[np.ndarray, np.ndarray, int]:
    """Position indices for training and held out; whole games are held out (no leak between them)."""
    games = np.unique(data["game"])
    held = set(rng.choice(games, size=max(1, int(len(games) * holdout)), replace=False).tolist())
    is_held = np.fromiter((g in held for g in data["game"]), bool, len(data["game"]))
    return np.flatnonzero(~is_held), np.flatnonzero(is_held), len(held)


def _cosine_adamw(net, lr: float, weight_decay: float, steps: int):
    """AdamW with 100 warm-up steps, then a cosine decay to zero at ``steps``."""
    import torch

    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    return opt, sched


class _Fit:
    """The pretraining loop: random minibatches of training positions, held-out metrics every so often."""

    def __init__(self, data, train_idx, held_idx, n2: int, batch: int, ownership_weight: float, eval_every: int):
        self.data, self.train_idx, self.held_idx, self.n2 = data, train_idx, held_idx, n2
        self.batch, self.ownership_weight, self.eval_every = batch, ownership_weight, eval_every

    def run(self, net, opt, sched, rng, steps: int, log, show_progress: bool) -> None:
        from deepapps.runtime import progress

        from .train import train_step

        t0 = time.perf_counter()
        bar = progress(total=steps, desc="pretraining on GNU Go games", unit="step", disable=not show_progress)
        run: list[dict[str, float]] = []
        for step in range(1, steps + 1):
            idx = self.train_idx[rng.integers(0, len(self.train_idx), size=self.batch)]
            run.append(train_step(net, opt, _batch(self.data, idx, self.n2), rng, self.ownership_weight))
            sched.step()
            bar.update(1)
            if step % self.eval_every == 0 or step == steps:
                row = self.row(net, step, run, t0)
                run = []
                log.log(**row)
                bar.set_postfix(top1=row["held_out_move_top1"], vmse=row["held_out_value_mse"])
        bar.close()

    def row(self, net, step: int, run: list[dict[str, float]], t0: float) -> dict[str, float]:
        return {
            "step": step,
            "epochs": round(step * self.batch / len(self.train_idx), 2),
            "minutes": round((time.perf_counter() - t0) / 60, 2),
            **{k: round(float(np.mean([d[k] for d in run])), 4) for k in run[-1]},
            **{f"held_out_{k}": v for k, v in held_out_metrics(net, self.data, self.held_idx, self.n2).items()},
        }


def _save_pretrained(out: Path, net, info: dict, final: dict, n_train: int, n_held: int) -> dict[str, Any]:
    from .net import count_params, save_net

    save_net(out / "model.safetensors", net, info)
    return {
        "model": str(out / "model.safetensors"),
        "params": count_params(net),
        "train_positions": int(n_train),
        "held_out_positions": int(n_held),
        "held_out": {k.replace("held_out_", ""): v for k, v in final.items() if k.startswith("held_out_")},
        "minutes": final["minutes"],
        "metrics": str(out / "metrics.jsonl"),
        "plot": str(out / "metrics.png"),
    }
