"""AlphaZero-style training: self-play workers on Ray, a replay buffer, gating, evaluation.

Self-play runs as ``--workers`` Ray actors (:class:`.selfplay.RaySelfPlay`, in the manner of
muzero-general): Ray starts inside the command by default, ``--ray-address`` (or ``RAY_ADDRESS``)
joins a cluster. Finished chunks of games feed the trainer's replay buffer as they arrive; the
trainer broadcasts each promoted network as a new weights version through Ray's object store, so
workers on other machines need no shared folder. See docs/scale-out.md.

Layout of ``out_dir``: ``best.safetensors`` (the best network so far; each promotion is also
broadcast to the self-play workers as a new weights version), ``model.safetensors`` (the result: the best network at the end),
``checkpoint/`` (the run state saved as one unit: ``candidate``, ``best``, ``optimizer`` and
``replay`` ``.safetensors`` plus ``state.json``, see :mod:`.train_state`), ``metrics.jsonl``,
``metrics.png`` and ``elo.png``. Running the same command again with ``--resume`` continues where
it stopped; the metrics file is appended to.

Devices: the network update (the gradient steps on replay minibatches) runs on ``device``;
self-play workers, gating and evaluation matches run on CPU (Ray actors/this process), where the small
batched searches of this engine are fastest.

Data parallel (``deepapps train go --nproc N``, torchrun): rank 0 alone plays (its worker
processes), gates, evaluates and writes every file. Each round it broadcasts the new self-play
positions and the number of gradient steps to take, so every rank holds the same replay buffer.
All ranks draw the same global minibatch indices (same seed) and each trains on its own shard of
them (``batch_size`` positions per rank, so one step sees ``N * batch_size``); DDP all-reduces the
gradients (gloo on CPU, nccl on CUDA), which keeps the weights identical on every rank. While
rank 0 gates, the other ranks wait at the next broadcast (the process group's timeout must exceed
one gating match).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .selfplay import Samples, SelfPlayConfig


@dataclass
class TrainConfig:
    """Everything a run needs: the ``deepapps train go`` options (see :mod:`.train_options`) and
    ``init``, the network file to start from (``--model``)."""

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
    ray_address: str | None = None  # join this Ray cluster for self-play (default $RAY_ADDRESS, else local)
    init: str = ""  # a .safetensors network to start from (``deepapps train go --model``)

    def validate(self) -> TrainConfig:
        """Raise InputError naming the first option of the wrong type or out of its range."""
        from .train_options import check_train_options

        check_train_options({**asdict(self), "resume": False})
        return self

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
# self-play workers (rank 0 only): Ray actors, see selfplay.RaySelfPlay


def start_selfplay(cfg: TrainConfig, best_net, generation: int, first_seed: int) -> Any:
    """``cfg.workers`` self-play actors on Ray (started here, or joined at ``cfg.ray_address``)."""
    from .selfplay import RaySelfPlay

    return RaySelfPlay(
        cfg.selfplay(),
        best_net,
        generation,
        cfg.workers,
        cfg.games_per_chunk,
        first_seed,
        ray_address=cfg.ray_address,
    )


# ---------------------------------------------------------------------------------------------
# replay buffer and the network update


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


def train_step(
    net,
    opt,
    s: Samples,
    rng: np.random.Generator | None,
    ownership_weight: float,
    device: str = "cpu",
    precision: str = "fp32",
    scaler=None,
    k: int | None = None,
) -> dict[str, float]:
    """One gradient step on ``s`` under a random dihedral symmetry (``k``, else drawn from ``rng``)."""
    import torch
    import torch.nn.functional as F

    from deepapps.runtime import autocast

    k = int(rng.integers(0, 8)) if k is None else k
    x, pi, own = symmetry(s.x, s.pi, s.own, k)
    x_t = torch.from_numpy(x.astype(np.float32)).to(device)
    pi_t = torch.from_numpy(pi).to(device)
    z_t = torch.from_numpy(s.z).to(device)
    net.train()
    with autocast(device, precision):
        logits, v, o = net(x_t)
    logits, v = logits.float(), v.float()
    policy_loss = -(pi_t * F.log_softmax(logits, 1)).sum(1).mean()
    value_loss = F.mse_loss(v, z_t)
    loss = policy_loss + value_loss
    out = {"policy_loss": float(policy_loss.detach()), "value_loss": float(value_loss.detach())}
    if o is not None:  # weight 0 still adds the term, so DDP sees every parameter used
        own_loss = F.mse_loss(o.float(), torch.from_numpy(own.astype(np.float32)).to(device))
        loss = loss + ownership_weight * own_loss
        if ownership_weight > 0:
            out["ownership_loss"] = float(own_loss.detach())
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    net.eval()
    return out


class Learner:
    """The network being trained, its optimiser and, under torchrun, its DDP wrapper.

    ``net`` is the plain module (save it, copy it, gate with it); gradient steps go through
    ``model`` (DDP when in a process group). :meth:`step` gives every rank its own shard of one
    global minibatch drawn from ``rng``, which must be seeded alike on every rank.
    """

    def __init__(self, net, cfg: TrainConfig, device: str = "cpu", precision: str = "fp32") -> None:
        import torch
        import torch.distributed as dist

        from deepapps.runtime import distributed, resolve_dtype

        grouped = _in_process_group()
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if grouped else (0, 1)
        self.device, self.precision = device, precision
        self.net = net.to(device)
        self.model = distributed.wrap(self.net, device)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        fp16 = resolve_dtype(precision, device) == torch.float16
        self.scaler = torch.amp.GradScaler(device.split(":")[0]) if fp16 else None
        self.batch_size = cfg.batch_size
        self.ownership_weight = cfg.ownership_weight

    def step(self, replay: Replay, rng: np.random.Generator) -> dict[str, float]:
        f = replay.flat()
        idx = rng.integers(0, len(f), size=(self.world, self.batch_size))[self.rank]
        ks = rng.integers(0, 8, size=self.world)
        batch = Samples(f.x[idx], f.pi[idx], f.z[idx], f.own[idx])
        return train_step(
            self.model,
            self.opt,
            batch,
            None,
            self.ownership_weight,
            self.device,
            self.precision,
            self.scaler,
            k=int(ks[self.rank]),
        )

    def optimizer_tensors(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The optimiser state as safetensors tensors and JSON metadata (no pickle)."""
        import torch

        sd = self.opt.state_dict()
        tensors = {}
        for pid, st in sd["state"].items():
            for name, val in st.items():
                tensors[f"{pid}.{name}"] = val if torch.is_tensor(val) else torch.tensor(float(val))
        return tensors, {"param_groups": sd["param_groups"]}

    def load_optimizer(self, path: Path) -> None:
        from deepapps.runtime import load_checkpoint

        tensors, meta = load_checkpoint(path)
        state: dict[int, dict[str, Any]] = {}
        for key, val in tensors.items():
            pid, name = key.split(".", 1)
            state.setdefault(int(pid), {})[name] = val
        self.opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _in_process_group() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


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


# ---------------------------------------------------------------------------------------------
# one run: start or resume, the loop, gating, checkpoints


@dataclass
class _Round:
    """What every rank does next: stop, take ``steps`` gradient steps, add ``samples`` to its replay."""

    stop: bool
    steps: int = 0
    samples: Samples | None = None


@dataclass
class _Run:
    """The state of one training run on one rank (rank 0 also plays, gates and writes)."""

    cfg: TrainConfig
    out: Path
    learner: Learner
    best_net: Any
    state: RunState
    replay: Replay
    log: Any  # RunMetrics
    is_main: bool
    rng: np.random.Generator  # rank 0's own draws (gating seeds)
    batch_rng: np.random.Generator  # minibatch draws: identical on every rank
    timer: Any  # deepapps.runtime.Timer
    losses: deque = field(default_factory=lambda: deque(maxlen=50))
    last_gate_step: int = 0
    last_row: dict[str, Any] = field(default_factory=dict)
    selfplay: Any = None  # rank 0's RaySelfPlay: new best networks are broadcast to it


def _resume_folder(out: Path, cfg: TrainConfig) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint folder to resume from and its run state (a pre-``checkpoint/`` run: ``out`` itself)."""
    from deepapps.errors import InputError
    from deepapps.runtime.checkpoint import read_metadata

    from .train_state import find_state

    found = find_state(out)
    if found is not None:
        folder, manifest = found
        state, saved_cfg = manifest["state"], manifest.get("train_config", {})
    elif (out / "candidate.safetensors").exists():
        folder, meta = out, read_metadata(out / "candidate.safetensors")
        state, saved_cfg = meta["state"], meta.get("train_config", {})
    else:
        return None
    if saved_cfg.get("size", cfg.size) != cfg.size:
        raise InputError(
            f"{out} holds a {saved_cfg['size']}x{saved_cfg['size']} run; resume it with --size {saved_cfg['size']}"
        )
    return folder, state


def _load_nets(cfg: TrainConfig, out: Path, resume: bool):
    """(candidate, best, run state, replay, checkpoint folder or None): resumed, from ``cfg.init``, or new."""
    from deepapps.runtime import load_checkpoint

    from .net import GoNet, NetConfig, load_net

    replay = Replay(cfg.buffer)
    found = _resume_folder(out, cfg) if resume else None
    if found is not None:
        folder, state = found
        net, _ = load_net(folder / "candidate.safetensors")
        best_net, _ = load_net(folder / "best.safetensors")
        if (folder / "replay.safetensors").exists():
            t, _ = load_checkpoint(folder / "replay.safetensors")
            replay.add(Samples(t["x"].numpy(), t["pi"].numpy(), t["z"].numpy(), t["own"].numpy()))
    else:
        folder, state = None, {}
        net = load_net(cfg.init)[0] if cfg.init else GoNet(NetConfig(cfg.blocks, cfg.channels, cfg.ownership))
        best_net = GoNet(net.config)
        best_net.load_state_dict(net.state_dict())
    cfg.blocks, cfg.channels, cfg.ownership = net.config.blocks, net.config.channels, net.config.ownership
    return net, best_net.eval(), RunState(**state), replay, folder


def _start(cfg: TrainConfig, out: Path, resume: bool, device: str, precision: str, is_main: bool) -> _Run:
    from deepapps.runtime import Timer, seed_everything, set_threads

    from .net import save_net
    from .train_state import RunMetrics

    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
    net, best_net, state, replay, folder = _load_nets(cfg, out, resume)
    learner = Learner(net, cfg, device, precision)
    if folder is not None and (folder / "optimizer.safetensors").exists():
        learner.load_optimizer(folder / "optimizer.safetensors")
    if is_main:
        save_net(
            out / "best.safetensors", best_net, {"generation": state.generation, "train_config": asdict(cfg)}
        )
    return _Run(
        cfg=cfg,
        out=out,
        learner=learner,
        best_net=best_net,
        state=state,
        replay=replay,
        log=RunMetrics(out, resume=folder is not None, enabled=is_main),
        is_main=is_main,
        rng=np.random.default_rng([cfg.seed, state.steps]),
        batch_rng=np.random.default_rng([cfg.seed, state.steps, 1]),
        timer=Timer(),
        last_gate_step=state.steps,
    )


def _plan_round(run: _Run, pool: Any, deadline: float) -> _Round:
    """Rank 0: take in a finished self-play chunk (if any) and decide the next gradient steps."""
    cfg, state = run.cfg, run.state
    if state.seconds >= deadline or (cfg.max_games and state.games >= cfg.max_games):
        return _Round(stop=True)
    with run.timer.stage("selfplay_wait"):  # includes the workers' start-up
        got = pool.poll()
    samples = None
    if got is not None:
        samples, stats = got
        state.games += stats["games"]
        state.positions += stats["positions"]
        state.selfplay_seconds_worker += stats["seconds"]
        run.last_row.update(mean_game_length=stats["mean_length"], black_win_rate=stats["black_win_rate"])
    steps = 0
    if run.replay.size + (len(samples) if samples is not None else 0) >= cfg.min_buffer:
        budget = cfg.reuse * state.positions / (cfg.batch_size * run.learner.world)
        steps = max(0, min(25, int(np.ceil(budget - state.steps))))
    if not steps and got is None:
        with run.timer.stage("selfplay_wait"):
            time.sleep(0.05)
    return _Round(stop=False, steps=steps, samples=samples)


def _broadcast_round(run: _Run, plan: _Round | None) -> _Round:
    """Send rank 0's round (decision and new positions) to every rank, as tensors (no pickling)."""
    import torch
    import torch.distributed as dist

    from .net import IN_PLANES

    dev = run.learner.device if dist.get_backend() == "nccl" else "cpu"
    head = torch.zeros(3, dtype=torch.int64, device=dev)
    if plan is not None:
        count = len(plan.samples) if plan.samples is not None else 0
        head += torch.tensor([int(plan.stop), plan.steps, count], device=dev)
    dist.broadcast(head, 0)
    stop, steps, count = (int(v) for v in head.tolist())
    if not count:
        return _Round(bool(stop), steps)
    n = run.cfg.size
    shapes = {
        "x": ((count, IN_PLANES, n, n), torch.uint8),
        "pi": ((count, n * n + 1), torch.float32),
        "z": ((count,), torch.float32),
        "own": ((count, n * n), torch.int8),
    }
    arrays = {}
    for name, (shape, dtype) in shapes.items():
        if run.is_main:
            t = torch.from_numpy(np.ascontiguousarray(getattr(plan.samples, name))).to(dev)
        else:
            t = torch.empty(shape, dtype=dtype, device=dev)
        dist.broadcast(t, 0)
        arrays[name] = t.cpu().numpy()
    return _Round(bool(stop), steps, Samples(**arrays))


def _loop(run: _Run, pool: Any, show_progress: bool) -> None:
    """Rounds of (rank 0 plans, every rank adds the new positions and trains) until rank 0 says stop."""
    from deepapps.runtime import progress

    deadline = run.cfg.minutes * 60.0
    bar = progress(
        total=int(deadline), desc="go self-play", unit="s", disable=not (show_progress and run.is_main)
    )
    t_start, start_seconds = time.perf_counter(), run.state.seconds
    try:
        while True:
            plan = None
            if run.is_main:
                run.state.seconds = start_seconds + time.perf_counter() - t_start
                if int(run.state.seconds) != bar.n:
                    bar.n = min(int(run.state.seconds), int(deadline))
                    bar.refresh()
                plan = _plan_round(run, pool, deadline)
            if run.learner.world > 1:
                plan = _broadcast_round(run, plan)
            if plan.stop:
                break
            if plan.samples is not None:
                run.replay.add(plan.samples)
            with run.timer.stage("train"):
                for _ in range(plan.steps):
                    run.losses.append(run.learner.step(run.replay, run.batch_rng))
                    run.state.steps += 1
            if run.is_main:
                _after_steps(run, plan, bar)
    finally:
        bar.close()


def _after_steps(run: _Run, plan: _Round, bar) -> None:
    """Rank 0: progress, and a gating round every ``gate_every`` steps."""
    state = run.state
    if plan.steps and run.losses:
        mean_loss = sum(sum(d.values()) for d in run.losses) / len(run.losses)
        bar.set_postfix(
            games=state.games, steps=state.steps, gen=state.generation, loss=f"{mean_loss:.3f}", refresh=False
        )
    if state.steps - run.last_gate_step >= run.cfg.gate_every:
        run.last_gate_step = state.steps
        _log_generation(run)


def _log_generation(run: _Run) -> None:
    row = _evaluate_generation(run)
    row.update(run.last_row)
    run.log.log(**row)
    _plots(run)


def _plots(run: _Run) -> None:
    run.log.plot(x="games", title=f"go {run.cfg.size}x{run.cfg.size} self-play")
    plot_elo(run.log.rows, run.out / "elo.png")


def _evaluate_generation(run: _Run) -> dict[str, Any]:
    """Gate the candidate against the best net (promote it at ``gate_threshold``), play the best
    against random, save the checkpoint; returns the metrics row."""
    from .net import save_net
    from .selfplay import elo_from_rate

    cfg, state, net = run.cfg, run.state, run.learner.net
    seed = int(run.rng.integers(1 << 30))
    with run.timer.stage("gate_and_eval"):
        gate = _gate(net, run.best_net, cfg, seed)
        promoted = gate["win_rate"] >= cfg.gate_threshold
        if promoted:
            run.best_net.load_state_dict(net.state_dict())
            state.generation += 1
            state.elo.append(state.elo[-1] + max(0.0, elo_from_rate(gate["win_rate"], gate["games"])))
        vs_random = _vs_random(run.best_net, cfg, seed)
    mean_losses = {
        k: float(np.mean([d[k] for d in run.losses if k in d]))
        for k in (run.losses[-1] if run.losses else {})
    }
    _save_state(run)
    if promoted:
        save_net(run.out / "best.safetensors", run.best_net, _net_meta(run))
        if run.selfplay is not None:
            run.selfplay.publish(run.best_net, state.generation)  # versioned: workers pick it up next chunk
    return {
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


def _net_meta(run: _Run) -> dict[str, Any]:
    return {"generation": run.state.generation, "train_config": asdict(run.cfg)}


def _save_state(run: _Run) -> None:
    """Candidate, best, optimiser, replay and counters as one unit (see :mod:`.train_state`)."""
    import torch

    from .net import net_payload
    from .train_state import save_state

    files = {
        "candidate.safetensors": net_payload(run.learner.net, _net_meta(run)),
        "best.safetensors": net_payload(run.best_net, _net_meta(run)),
        "optimizer.safetensors": run.learner.optimizer_tensors(),
    }
    if run.replay.size:
        f = run.replay.flat()
        tensors = {k: torch.from_numpy(getattr(f, k)) for k in ("x", "pi", "z", "own")}
        files["replay.safetensors"] = (tensors, {"positions": len(f)})
    with run.timer.stage("checkpoint"):
        save_state(run.out, files, {"state": asdict(run.state), "train_config": asdict(run.cfg)})


def _finish(run: _Run) -> dict[str, Any]:
    """Rank 0: a last gate (so the last training is not lost), plots, checkpoint, model and summary."""
    from .net import count_params, save_net

    cfg, state = run.cfg, run.state
    if state.steps > run.last_gate_step and run.replay.size >= cfg.min_buffer:
        _log_generation(run)
    _plots(run)
    _save_state(run)
    model = save_net(
        run.out / "model.safetensors",
        run.best_net,
        {**_net_meta(run), "games": state.games, "size": cfg.size, "komi": cfg.komi},
    )
    return {
        "out_dir": str(run.out),
        "model": str(model),
        "checkpoint": str(run.out / "checkpoint"),
        "params": count_params(run.best_net),
        "device": run.learner.device,
        "world_size": run.learner.world,
        "games": state.games,
        "positions": state.positions,
        "steps": state.steps,
        "generation": state.generation,
        "elo": state.elo[-1],
        "minutes": round(state.seconds / 60, 2),
        "selfplay_games_per_hour": round(state.games / max(state.seconds, 1e-9) * 3600, 1),
        "stage_seconds": {k: round(v / 1000, 2) for k, v in run.timer.ms.items()},
        "last": run.log.rows[-1] if run.log.rows else {},
        "metrics": str(run.out / "metrics.jsonl"),
        "plot": str(run.out / "elo.png"),
    }


def run_training(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    show_progress: bool = True,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict:
    """Self-play -> train -> gate loop for ``cfg.minutes`` (or ``cfg.max_games``); returns a summary.

    Under torchrun every rank calls this (see the module docstring); rank 0 returns the summary,
    the others ``{"rank": r, "steps": s}``.
    """
    from deepapps.runtime import distributed

    joined_here = distributed.env_info().world_size > 1 and not _in_process_group()
    info = distributed.setup(device)
    if info.enabled and device.startswith("cuda"):
        device = f"cuda:{info.local_rank}"
    try:
        if resume and info.is_main and Path(out_dir).is_dir():
            from .train_state import find_state

            find_state(Path(out_dir))  # rank 0 alone repairs an interrupted checkpoint swap
        distributed.barrier()
        run = _start(cfg, Path(out_dir), resume, device, precision, info.is_main)
        pool = (
            start_selfplay(cfg, run.best_net, run.state.generation, cfg.seed * 1000 + run.state.games)
            if info.is_main
            else None
        )
        run.selfplay = pool
        try:
            _loop(run, pool, show_progress)
        finally:
            if pool is not None:
                pool.close()
        summary = _finish(run) if info.is_main else {"rank": info.rank, "steps": run.state.steps}
        distributed.barrier()
        return summary
    finally:
        if joined_here:
            distributed.teardown(sync=False)  # the success path met at the barrier above; an error must not wait


CONFIG_FIELDS = tuple(f for f in TrainConfig.__dataclass_fields__ if f != "init")


def train(
    model=None,
    dataset=None,
    out_dir: str | Path = "runs/train/go",
    device: str = "cpu",
    precision: str = "fp32",
    *,
    resume: bool = False,
    size: int = 7,
    komi: float = 7.5,
    blocks: int = 4,
    channels: int = 32,
    ownership: bool = True,
    ownership_weight: float = 1.0,
    workers: int = 2,
    minutes: float = 45.0,
    max_games: int = 0,
    visits: int = 96,
    fast_visits: int = 24,
    full_prob: float = 0.25,
    concurrent: int = 8,
    games_per_chunk: int = 8,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    reuse: float = 6.0,
    buffer: int = 40_000,
    min_buffer: int = 512,
    gate_every: int = 150,
    gate_games: int = 30,
    gate_visits: int = 32,
    gate_threshold: float = 0.55,
    eval_games: int = 20,
    eval_visits: int = 32,
    seed: int = 0,
    threads: int = 1,
    ray_address: str | None = None,
) -> dict:
    """``deepapps train go``: AlphaZero-style self-play training (options: :class:`TrainConfig`).

    ``model`` (a resolved model with ``.path``, or None for a random network) is the network to
    start from, e.g. one pretrained on GNU Go games; with ``resume`` a checkpoint in ``out_dir``
    wins over it. ``device`` (already resolved: "cpu", "cuda:0") runs the network update;
    self-play, gating and evaluation stay on CPU. Go needs no dataset: it makes its own games.
    """
    from deepapps.errors import InputError

    from .train_options import check_train_options

    options = {name: value for name, value in locals().items() if name in CONFIG_FIELDS}
    check_train_options({**options, "resume": resume})
    if dataset is not None:
        raise InputError("Go trains on its own self-play games and takes no dataset; drop --dataset")
    cfg = TrainConfig(**options)
    from deepapps.runtime.cluster import check_reachable, resolve_address

    if resolve_address(ray_address):
        check_reachable(resolve_address(ray_address))  # before any file is written
    if model is not None:
        cfg.init = str(getattr(model, "path", model))
    return run_training(cfg, out_dir, resume=resume, device=device, precision=precision)
