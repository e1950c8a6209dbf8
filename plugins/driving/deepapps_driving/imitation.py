"""DAgger for the PilotNet lane keeper: the learner drives, the privileged expert labels every frame.

Iteration 0 drives with the expert only; iteration i lets the learner steer with probability
1 - 0.5**i at each step (Ross et al.'s beta schedule). Every visited frame stack gets the expert's
steering command as its label; the learner is refit on the aggregate after each iteration.
Frames are mirrored left-right at random during fitting (a mirrored road needs mirrored steering).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import catalog
from .controllers import LaneKeepingExpert
from .episode import run_episode
from .policies import NetworkPolicy


def training_seed(seed: int, iteration: int, episode: int) -> int:
    """An environment seed for training: always below the held-out range used by eval and run."""
    return (seed * 7_919 + iteration * 1_000 + episode) % catalog.HELD_OUT_SEED_BASE


@dataclass
class Dataset:
    """Aggregated (frame stack, expert steering) pairs, oldest dropped beyond ``cap``."""

    cap: int
    frames: list[np.ndarray] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)

    def add(self, frames: list[np.ndarray], labels: list[float]) -> None:
        self.frames.extend(frames)
        self.labels.extend(labels)
        extra = len(self.frames) - self.cap
        if extra > 0:
            del self.frames[:extra], self.labels[:extra]

    def __len__(self) -> int:
        return len(self.frames)


class MixedDriver:
    """Executes the learner's action with probability 1 - beta, else the expert's; records the
    observations and the expert's labels."""

    def __init__(self, learner: NetworkPolicy | None, expert: LaneKeepingExpert, beta: float, rng) -> None:
        self.learner, self.expert, self.beta, self.rng = learner, expert, beta, rng
        self.frames: list[np.ndarray] = []
        self.labels: list[float] = []

    def reset(self) -> None:
        pass

    def act(self, obs, info=None):
        label = self.expert.act(obs, info)
        self.frames.append(np.asarray(obs, dtype=np.uint8).copy())
        self.labels.append(float(label[0]))
        if self.learner is None or self.rng.random() < self.beta:
            return label
        return self.learner.act(obs)


def collect(
    learner, expert, beta: float, seeds: list[int], rng, variant: str = "both"
) -> tuple[list, list, list[dict]]:
    """Drive one episode per seed (the variants in turn, or only ``variant``); frames, labels, metrics."""
    frames, labels, stats = [], [], []
    names = catalog.info(catalog.LANE_KEEPING).variant_names
    variants = names if variant == "both" else (variant,)
    for i, seed in enumerate(seeds):
        driver = MixedDriver(learner, expert, beta, rng)
        log = run_episode(catalog.LANE_KEEPING, driver, variants[i % len(variants)], seed)
        frames += driver.frames
        labels += driver.labels
        stats.append({"variant": log.variant, **log.metrics()})
    return frames, labels, stats


def fit(
    network, data: Dataset, epochs: int, batch: int, lr: float, rng, device: str = "cpu", optimizer=None
) -> tuple[list[float], object]:
    """Minimise the squared steering error over ``data``; returns (mean loss per epoch, optimizer)."""
    import torch

    network.train()
    optimizer = optimizer or torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    x_all = np.stack(data.frames)
    y_all = np.asarray(data.labels, dtype=np.float32)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(x_all))
        total = 0.0
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            x = torch.as_tensor(x_all[idx], dtype=torch.float32, device=device) / 255.0
            y = torch.as_tensor(y_all[idx], device=device).unsqueeze(1)
            flip = torch.as_tensor(rng.random(len(idx)) < 0.5, device=device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y = torch.where(flip[:, None], -y, y)
            loss = torch.nn.functional.mse_loss(network(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(order))
    network.eval()
    return losses, optimizer


def dagger(
    network,
    iterations: int,
    episodes: int,
    epochs: int,
    batch: int,
    lr: float,
    max_samples: int,
    seed: int,
    device: str = "cpu",
    deadline: float | None = None,
    log=None,
    bar=None,
    warm_start: bool = False,
    variant: str = "both",
) -> dict:
    """Run DAgger on ``network`` in place; returns the history and the data size.

    ``warm_start`` (a network that already drives) skips the expert-only iteration: beta starts at 0.5.
    """
    rng = np.random.default_rng(seed)
    expert = LaneKeepingExpert()
    data = Dataset(max_samples)
    learner = NetworkPolicy(catalog.LANE_KEEPING, "learner", network, {"output": "identity"}, device=device)
    optimizer, history = None, []
    for it in range(iterations):
        beta = 0.5 ** (it + int(warm_start))
        seeds = [training_seed(seed, it, e) for e in range(episodes)]
        t0 = time.perf_counter()
        frames, labels, stats = collect(learner if beta < 1 else None, expert, beta, seeds, rng, variant)
        data.add(frames, labels)
        losses, optimizer = fit(network, data, epochs, batch, lr, rng, device, optimizer)
        row = {
            "iteration": it,
            "beta": beta,
            "samples": len(data),
            "imitation_loss": losses[-1],
            "driven_mean_abs_offset_m": float(np.mean([s["mean_abs_offset_m"] for s in stats])),
            "driven_departures": int(sum(s["departures"] for s in stats)),
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        if log is not None:
            log.log(**row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", samples=len(data))
        if deadline is not None and time.time() > deadline:
            break
    return {"history": history, "samples": len(data), "iterations_done": len(history)}
