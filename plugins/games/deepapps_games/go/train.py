"""AlphaZero-style training: self-play worker processes, a replay buffer, gating, evaluation.

Layout of ``out_dir``: ``best.safetensors`` (the net the workers play with), ``candidate.safetensors``
(the net being trained, with the run state in its metadata), ``optimizer.safetensors``,
``replay.safetensors`` (the buffer), ``metrics.jsonl``, ``metrics.png`` and ``elo.png``. Running the
same command again with ``--resume`` continues where it stopped.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .selfplay import Samples, SelfPlayConfig


@dataclass
class TrainConfig:
    """Everything a run needs; every field is a ``deepapps train go --name value`` option."""

    size: int = 7
    komi: float = 7.5
    blocks: int = 4
    channels: int = 32
    ownership: bool = True
    ownership_weight: float = 1.0
    workers: int = 2
    minutes: float = 45.0
    max_games: int = 0  # 0 = until `minutes`
    visits: int = 96
    fast_visits: int = 24
    full_prob: float = 0.25  # playout cap randomisation; 1.0 = every move a full search
    concurrent: int = 8
    games_per_chunk: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    reuse: float = 6.0  # each recorded position is trained on about this many times (augmented)
    buffer: int = 40_000
    min_buffer: int = 512
    gate_every: int = 150  # training steps between gating matches
    gate_games: int = 30
    gate_visits: int = 32
    gate_threshold: float = 0.55
    eval_games: int = 20
    eval_visits: int = 32
    seed: int = 0
    threads: int = 1
    init: str = ""  # start from this network (e.g. one pretrained on GNU Go games) instead of random

    def selfplay(self) -> SelfPlayConfig:
        return SelfPlayConfig(
            size=self.size,
            komi=self.komi,
            visits=self.visits,
            fast_visits=self.fast_visits,
            full_prob=self.full_prob,
            temperature_moves=max(2, self.size * self.size // 6),
            concurrent=self.concurrent,
        )


@dataclass
class RunState:
    games: int = 0
    positions: int = 0
    steps: int = 0
    generation: int = 0
    elo: list[float] = field(default_factory=lambda: [0.0])
    seconds: float = 0.0
    selfplay_seconds_worker: float = 0.0


# ---------------------------------------------------------------------------------------------
# worker process


def _worker(wid: int, cfg: dict, best_path: str, out_q, stop, seed: int) -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("DEEPAPPS_NO_PROGRESS", "1")
    from .net import Evaluator, load_net
    from .selfplay import selfplay

    tcfg = TrainConfig(**cfg)
    spc = tcfg.selfplay()
    mtime = None
    ev = None
    chunk = 0
    while not stop.is_set():
        m = os.path.getmtime(best_path)
        if m != mtime:
            net, meta = load_net(best_path)
            ev = Evaluator(net)
            mtime = m
            gen = meta.get("generation", 0)
        t0 = time.perf_counter()
        samples, stats = selfplay(ev, spc, tcfg.games_per_chunk, seed=seed * 100_003 + chunk)
        stats["seconds"] = time.perf_counter() - t0
        stats["generation"] = gen
        stats["worker"] = wid
        chunk += 1
        while not stop.is_set():
            try:
                out_q.put((samples, stats), timeout=1.0)
                break
            except queue.Full:
                continue


# ---------------------------------------------------------------------------------------------
# trainer


def symmetry(x: np.ndarray, pi: np.ndarray, own: np.ndarray, k: int) -> tuple:
    """Apply dihedral transform ``k`` (0..7) to planes ``(B,C,N,N)``, policies and ownership."""
    b, n = x.shape[0], x.shape[-1]
    pts = pi[:, : n * n].reshape(b, n, n)
    ow = own.reshape(b, n, n)

    def t(a: np.ndarray) -> np.ndarray:
        a = np.rot90(a, k % 4, axes=(-2, -1))
        if k >= 4:
            a = np.flip(a, axis=-1)
        return a

    x2 = t(x)
    pi2 = np.concatenate([t(pts).reshape(b, n * n), pi[:, n * n :]], 1)
    return np.ascontiguousarray(x2), np.ascontiguousarray(pi2), np.ascontiguousarray(t(ow).reshape(b, n * n))


class Replay:
    """A FIFO window of recent positions."""

    def __init__(self, capacity: int) -> None:
        self.items: deque[Samples] = deque()
        self.capacity = capacity
        self.size = 0

    def add(self, s: Samples) -> None:
        if len(s) == 0:
            return
        self.items.append(s)
        self.size += len(s)
        while self.size - len(self.items[0]) >= self.capacity:
            self.size -= len(self.items.popleft())
        self._flat = None

    _flat: Samples | None = None

    def flat(self) -> Samples:
        if self._flat is None:
            self._flat = Samples.concat(list(self.items))
        return self._flat

    def sample(self, batch: int, rng: np.random.Generator) -> Samples:
        f = self.flat()
        idx = rng.integers(0, len(f), size=batch)
        return Samples(f.x[idx], f.pi[idx], f.z[idx], f.own[idx])


def train_step(net, opt, s: Samples, rng: np.random.Generator, ownership_weight: float) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    k = int(rng.integers(0, 8))
    x, pi, own = symmetry(s.x, s.pi, s.own, k)
    x_t = torch.from_numpy(x.astype(np.float32))
    pi_t = torch.from_numpy(pi)
    z_t = torch.from_numpy(s.z)
    net.train()
    logits, v, o = net(x_t)
    policy_loss = -(pi_t * F.log_softmax(logits, 1)).sum(1).mean()
    value_loss = F.mse_loss(v, z_t)
    loss = policy_loss + value_loss
    out = {"policy_loss": float(policy_loss.detach()), "value_loss": float(value_loss.detach())}
    if o is not None and ownership_weight > 0:
        own_loss = F.mse_loss(o, torch.from_numpy(own.astype(np.float32)))
        loss = loss + ownership_weight * own_loss
        out["ownership_loss"] = float(own_loss.detach())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    net.eval()
    return out


def _save_state(out: Path, net, best_net, opt, replay: Replay, state: RunState, cfg: TrainConfig) -> None:
    import torch

    from deepapps.runtime import save_checkpoint

    from .net import save_net

    meta = {"train_config": asdict(cfg), "state": asdict(state), "generation": state.generation}
    save_net(out / "candidate.safetensors", net, meta)
    if best_net is not None:
        save_net(
            out / "best.safetensors", best_net, {"generation": state.generation, "train_config": asdict(cfg)}
        )
    tensors = {}
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{pid}.{name}"] = val
            else:
                tensors[f"{pid}.{name}"] = torch.tensor(float(val))
    save_checkpoint(out / "optimizer.safetensors", tensors, {"param_groups": sd["param_groups"]})
    if replay.size:
        f = replay.flat()
        save_checkpoint(
            out / "replay.safetensors",
            {
                "x": torch.from_numpy(f.x),
                "pi": torch.from_numpy(f.pi),
                "z": torch.from_numpy(f.z),
                "own": torch.from_numpy(f.own),
            },
            {"positions": len(f)},
        )


def _load_optimizer(path: Path, opt) -> None:
    import torch

    from deepapps.runtime import load_checkpoint

    tensors, meta = load_checkpoint(path)
    state: dict[int, dict[str, Any]] = {}
    for key, val in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = val if name != "step" else torch.tensor(float(val))
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _gate(candidate, best, cfg: TrainConfig, seed: int) -> dict[str, Any]:
    from .net import Evaluator
    from .selfplay import MCTSPlayer, match

    a = MCTSPlayer(
        Evaluator(candidate), visits=cfg.gate_visits, temperature_moves=4, seed=seed, name="candidate"
    )
    b = MCTSPlayer(Evaluator(best), visits=cfg.gate_visits, temperature_moves=4, seed=seed + 1, name="best")
    return match(a, b, cfg.gate_games, cfg.size, cfg.komi)


def _vs_random(net, cfg: TrainConfig, seed: int) -> dict[str, Any]:
    from .net import Evaluator
    from .selfplay import MCTSPlayer, RandomPlayer, match

    a = MCTSPlayer(Evaluator(net), visits=cfg.eval_visits, seed=seed)
    return match(a, RandomPlayer(seed), cfg.eval_games, cfg.size, cfg.komi)


def plot_elo(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Elo (chained gating results) and win rate against random, over self-play games."""
    pts = [r for r in rows if "elo" in r]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    games = [r["games"] for r in pts]
    ax[0].plot(games, [r["elo"] for r in pts], marker="o", ms=3)
    ax[0].set_title("Elo of the best net (chained gating)")
    ax[0].set_xlabel("self-play games")
    ax[1].plot(games, [r.get("win_rate_vs_random", float("nan")) for r in pts], marker="o", ms=3, color="C2")
    ax[1].plot(games, [r.get("gate_win_rate", float("nan")) for r in pts], marker="x", ms=3, color="C1")
    ax[1].legend(["vs random", "candidate vs best"], fontsize=8)
    ax[1].set_ylim(0, 1.02)
    ax[1].set_xlabel("self-play games")
    ax[1].set_title("win rate")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_training(
    cfg: TrainConfig, out_dir: str | Path, resume: bool = False, show_progress: bool = True
) -> dict:
    """Self-play -> train -> gate loop for ``cfg.minutes`` (or ``cfg.max_games``); returns a summary."""
    import torch

    from deepapps.runtime import load_checkpoint, progress
    from deepapps.runtime.training import MetricsLog

    from .net import GoNet, NetConfig, count_params, load_net, save_net
    from .selfplay import elo_from_rate

    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = RunState()
    replay = Replay(cfg.buffer)
    old_rows: list[dict[str, Any]] = []
    if resume and (out / "candidate.safetensors").exists():
        net, meta = load_net(out / "candidate.safetensors")
        state = RunState(**meta["state"])
        best_net, _ = load_net(out / "best.safetensors")
        if (out / "replay.safetensors").exists():
            t, _ = load_checkpoint(out / "replay.safetensors")
            replay.add(Samples(t["x"].numpy(), t["pi"].numpy(), t["z"].numpy(), t["own"].numpy()))
        if (out / "metrics.jsonl").exists():
            old_rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    elif cfg.init:
        from .runner import model_file  # a registered model name or a .safetensors path

        net, _ = load_net(model_file(cfg.init))
        cfg.blocks, cfg.channels, cfg.ownership = net.config.blocks, net.config.channels, net.config.ownership
        best_net = GoNet(net.config)
        best_net.load_state_dict(net.state_dict())
    else:
        net = GoNet(NetConfig(cfg.blocks, cfg.channels, cfg.ownership))
        best_net = GoNet(NetConfig(cfg.blocks, cfg.channels, cfg.ownership))
        best_net.load_state_dict(net.state_dict())
    net.eval()
    best_net.eval()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if resume and (out / "optimizer.safetensors").exists():
        _load_optimizer(out / "optimizer.safetensors", opt)
    save_net(
        out / "best.safetensors", best_net, {"generation": state.generation, "train_config": asdict(cfg)}
    )
    log = MetricsLog(out)
    for r in old_rows:
        log.log(**r)

    ctx = mp.get_context("spawn")
    out_q = ctx.Queue(maxsize=4 * max(1, cfg.workers))
    stop = ctx.Event()
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                i,
                asdict(cfg),
                str(out / "best.safetensors"),
                out_q,
                stop,
                cfg.seed * 1000 + state.games + i,
            ),
            daemon=True,
        )
        for i in range(cfg.workers)
    ]
    for p in procs:
        p.start()
    t_start = time.perf_counter()
    start_seconds = state.seconds
    deadline = cfg.minutes * 60.0
    bar = progress(total=int(deadline), desc="go self-play", unit="s", disable=not show_progress)
    losses: deque[dict[str, float]] = deque(maxlen=50)
    last_gate_step = state.steps
    last_row: dict[str, Any] = {}
    try:
        while True:
            elapsed = state.seconds = start_seconds + time.perf_counter() - t_start
            if int(elapsed) != bar.n:
                bar.n = min(int(elapsed), int(deadline))
                bar.refresh()
            if elapsed >= deadline or (cfg.max_games and state.games >= cfg.max_games):
                break
            if not any(p.is_alive() for p in procs) and out_q.empty():
                codes = [p.exitcode for p in procs]
                raise RuntimeError(
                    f"all self-play workers exited (exit codes {codes}); see their errors above"
                )
            got = False
            try:
                samples, stats = out_q.get(timeout=0.05)
                replay.add(samples)
                state.games += stats["games"]
                state.positions += stats["positions"]
                state.selfplay_seconds_worker += stats["seconds"]
                last_row.update(mean_game_length=stats["mean_length"], black_win_rate=stats["black_win_rate"])
                got = True
            except queue.Empty:
                pass
            if replay.size < cfg.min_buffer:
                continue
            budget = cfg.reuse * state.positions / cfg.batch_size
            did = 0
            while state.steps < budget and did < 25:
                losses.append(
                    train_step(net, opt, replay.sample(cfg.batch_size, rng), rng, cfg.ownership_weight)
                )
                state.steps += 1
                did += 1
            if not did and not got:
                time.sleep(0.05)
            if losses and did:
                bar.set_postfix(
                    games=state.games,
                    steps=state.steps,
                    gen=state.generation,
                    loss=f"{sum(sum(d.values()) for d in losses) / len(losses):.3f}",
                    refresh=False,
                )
            if state.steps - last_gate_step >= cfg.gate_every:
                last_gate_step = state.steps
                row = _evaluate_generation(
                    net, best_net, cfg, state, losses, rng, elo_from_rate, out, replay, opt
                )
                row.update(last_row)
                log.log(**row)
                log.plot(x="games", title=f"go {cfg.size}x{cfg.size} self-play")
                plot_elo(log.rows, out / "elo.png")
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        bar.close()
    # final gate so the last training is not lost, then save
    if state.steps > last_gate_step and replay.size >= cfg.min_buffer:
        row = _evaluate_generation(net, best_net, cfg, state, losses, rng, elo_from_rate, out, replay, opt)
        row.update(last_row)
        log.log(**row)
    log.plot(x="games", title=f"go {cfg.size}x{cfg.size} self-play")
    plot_elo(log.rows, out / "elo.png")
    _save_state(out, net, best_net, opt, replay, state, cfg)
    save_net(
        out / "model.safetensors",
        best_net,
        {
            "generation": state.generation,
            "train_config": asdict(cfg),
            "games": state.games,
            "size": cfg.size,
            "komi": cfg.komi,
        },
    )
    return {
        "out_dir": str(out),
        "model": str(out / "model.safetensors"),
        "params": count_params(best_net),
        "games": state.games,
        "positions": state.positions,
        "steps": state.steps,
        "generation": state.generation,
        "elo": state.elo[-1],
        "minutes": round(state.seconds / 60, 2),
        "selfplay_games_per_hour": round(state.games / max(state.seconds, 1e-9) * 3600, 1),
        "last": log.rows[-1] if log.rows else {},
        "metrics": str(out / "metrics.jsonl"),
        "plot": str(out / "elo.png"),
    }


def _evaluate_generation(
    net, best_net, cfg, state, losses, rng, elo_from_rate, out, replay, opt
) -> dict[str, Any]:
    seed = int(rng.integers(1 << 30))
    gate = _gate(net, best_net, cfg, seed)
    promoted = gate["win_rate"] >= cfg.gate_threshold
    if promoted:
        best_net.load_state_dict(net.state_dict())
        state.generation += 1
        state.elo.append(state.elo[-1] + max(0.0, elo_from_rate(gate["win_rate"], gate["games"])))
    vs_random = _vs_random(best_net, cfg, seed)
    mean_losses = {
        k: float(np.mean([d[k] for d in losses if k in d])) for k in (losses[-1] if losses else {})
    }
    row = {
        "games": state.games,
        "positions": state.positions,
        "steps": state.steps,
        "minutes": round(state.seconds / 60, 2),
        "generation": state.generation,
        "gate_win_rate": gate["win_rate"],
        "promoted": int(promoted),
        "elo": state.elo[-1],
        "win_rate_vs_random": vs_random["win_rate"],
        **mean_losses,
    }
    _save_state(out, net, best_net, opt, replay, state, cfg)
    return row


def train(
    model=None, dataset=None, out_dir="runs/train/go", device="cpu", resume: bool = False, **options
) -> dict:
    """``deepapps train go``: options are :class:`TrainConfig` fields (``--size 7 --minutes 45``)."""
    from deepapps import InputError

    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(
            f"unknown option(s) for `deepapps train go`: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    cfg = TrainConfig(**options)
    if not 5 <= cfg.size <= 19:
        raise InputError(f"--size must be 5..19, got {cfg.size}")
    if device != "cpu":
        pass  # self-play workers are CPU processes; the trainer is small enough for CPU as well
    return run_training(cfg, out_dir, resume=resume)
