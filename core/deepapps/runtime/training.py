"""A small supervised training loop shared by plugins: DDP-aware, with a progress bar,
a metrics file (``metrics.jsonl``), a plot (``metrics.png``) and safetensors checkpoints.

It covers the common case (a model, a dataset of tensors, a loss). Tasks with their own
trainer (ultralytics, self-play) still write the same files with :class:`MetricsLog`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import distributed
from .checkpoint import save_checkpoint
from .progress import progress


class MetricsLog:
    """Appends one JSON line per step/epoch and draws every numeric series into a PNG."""

    def __init__(self, out_dir: str | Path, enabled: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.rows: list[dict[str, Any]] = []
        if enabled:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "metrics.jsonl").write_text("")

    def log(self, **row: Any) -> None:
        self.rows.append(row)
        if self.enabled:
            with open(self.out_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")

    def plot(self, x: str = "epoch", title: str = "") -> Path | None:
        """Plot every numeric column against ``x``; returns the PNG path."""
        if not self.enabled or not self.rows:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        keys = [k for k in self.rows[-1] if k != x and isinstance(self.rows[-1][k], (int, float))]
        if not keys:
            return None
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
        xs = [r.get(x, i) for i, r in enumerate(self.rows)]
        for ax, key in zip(axes[0], keys, strict=False):
            ax.plot(xs, [r.get(key, math.nan) for r in self.rows], marker="o", ms=3)
            ax.set_title(key)
            ax.set_xlabel(x)
            ax.grid(alpha=0.3)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        path = self.out_dir / "metrics.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


@dataclass
class FitResult:
    history: list[dict[str, Any]]
    checkpoint: Path | None
    plot: Path | None
    seconds: float
    world_size: int


def fit(
    model: Any,
    dataset: Any,
    loss_fn: Callable[[Any, Any], Any],
    *,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 1e-3,
    out_dir: str | Path = "runs/train",
    device: str = "cpu",
    val_fn: Callable[[Any], dict[str, float]] | None = None,
    metadata: dict[str, Any] | None = None,
    seed: int = 0,
    show_progress: bool = True,
) -> FitResult:
    """Train ``model`` on ``dataset`` (items are ``(x, y)``) with AdamW; DDP when launched with torchrun."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler

    info = distributed.setup(device)
    torch.manual_seed(seed)
    model = model.to(device)
    ddp_model = distributed.wrap(model, device)
    sampler = DistributedSampler(dataset, shuffle=True, seed=seed) if info.enabled else None
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=sampler is None, sampler=sampler)
    opt = torch.optim.AdamW(ddp_model.parameters(), lr=lr)
    log = MetricsLog(out_dir, enabled=info.is_main)
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        ddp_model.train()
        total, count = 0.0, 0
        bar = progress(
            loader, desc=f"epoch {epoch}/{epochs}", unit="batch", disable=not (show_progress and info.is_main)
        )
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(ddp_model(x), y)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(x)
            count += len(x)
            bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": distributed.all_reduce_mean(total / max(count, 1)),
        }
        if val_fn is not None and info.is_main:
            ddp_model.eval()
            with torch.inference_mode():
                row.update(val_fn(model))
        log.log(**row)
    ckpt = None
    plot = None
    if info.is_main:
        ckpt = save_checkpoint(Path(out_dir) / "model.safetensors", model.state_dict(), metadata or {})
        plot = log.plot(title=str(out_dir))
    distributed.barrier()
    return FitResult(log.rows, ckpt, plot, time.perf_counter() - t0, info.world_size)
