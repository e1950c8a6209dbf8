"""A small supervised training loop shared by plugins: DDP-aware, with a progress bar,
a metrics file (``metrics.jsonl``), a plot (``metrics.png``) and safetensors checkpoints.

It covers the common case (a model, a dataset of tensors, a loss). Tasks with their own
trainer (ultralytics, self-play) still write the same files with :class:`MetricsLog`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


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
