"""The result of one driving episode: its metrics, outcome, time series and (optionally) its video."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepapps import Result
from deepapps.results import private

# per task: (series key, label, unit) drawn by plot()
PLOTS = {
    "lane-keeping": (("lateral_offset", "lateral offset", "m"), ("steering", "steering", "rad")),
    "adaptive-cruise": (
        ("speed", "ego speed", "m/s"),
        ("lead_speed", "lead speed", "m/s"),
        ("gap", "gap", "m"),
        ("accel", "acceleration", "m/s²"),
    ),
    "lane-change": (("speed", "speed", "m/s"), ("lane", "lane index", "")),
    "parking": (("speed", "speed", "m/s"), ("x", "x", "m"), ("y", "y", "m")),
}


@dataclass(kw_only=True)
class EpisodeResult(Result):
    """One episode: ``metrics`` (the task's openpilot-style figures), ``outcome`` (``time limit``,
    ``collision`` or ``parked``), the environment and seed, and the video path when recorded."""

    policy: str = ""
    variant: str = ""
    env_id: str = ""
    seed: int = 0
    steps: int = 0
    outcome: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    video: str | None = None
    series: dict[str, list[float]] = private(default_factory=dict)
    dt: float = private(0.1)

    def summary(self) -> str:
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in self.metrics.items() if v is not None)
        video = f"; video {self.video}" if self.video else ""
        return f"{self.policy} on {self.env_id} seed {self.seed}: {self.outcome} after {self.steps} steps; {shown}{video}"

    def plot(self):
        """The episode's time series (one panel each) with its key metrics in the title, as a PIL image."""
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from PIL import Image

        panels = [p for p in PLOTS.get(self.task, ()) if p[0] in self.series]
        fig, axes = plt.subplots(
            len(panels) or 1, 1, figsize=(7, 1.6 * max(len(panels), 1) + 0.6), sharex=True, squeeze=False
        )
        for ax, (key, label, unit) in zip(axes[:, 0], panels, strict=False):
            values = self.series[key]
            ax.plot([i * self.dt for i in range(len(values))], values, lw=1.2)
            ax.set_ylabel(f"{label} ({unit})" if unit else label, fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("time (s)")
        keys = list(self.metrics)[:4]
        fig.suptitle(
            f"{self.policy} · {self.variant} · seed {self.seed} · {self.outcome}\n"
            + ", ".join(f"{k} {_fmt(self.metrics[k])}" for k in keys),
            fontsize=8,
        )
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        plt.close(fig)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
