"""The ``warehouse`` runner: one call plays one episode with the shared policy (or the scripted one)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepapps.errors import InputError
from deepapps.resolution import ModelRef
from deepapps.results import Result, private
from deepapps.runner import Runner

from ..specs import WAREHOUSE

MAX_STEPS = 100_000


def check_input(text: str) -> None:
    """An episode length: a whole number of steps."""
    episode_steps(text)


def episode_steps(item: Any) -> int:
    text = str(item).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_STEPS:
        raise InputError(f"input {text!r}: give the episode length in steps, 1-{MAX_STEPS} (e.g. 200)")
    return int(text)


@dataclass(kw_only=True)
class WarehouseResult(Result):
    policy: str = ""
    robots: int = 0
    steps: int = 0
    seed: int = 0
    deliveries: int = 0
    picks: int = 0
    collisions: int = 0
    throughput_per_100_steps: float = 0.0
    collisions_per_100_steps: float = 0.0
    deliveries_over_time: list[int] = field(default_factory=list)
    video: str | None = None
    frame: Any = private()

    def summary(self) -> str:
        return (
            f"{self.policy}: {self.deliveries} deliveries, {self.collisions} collisions in {self.steps} steps "
            f"({self.throughput_per_100_steps:.2f} / {self.collisions_per_100_steps:.2f} per 100 steps)"
            + (f", video {self.video}" if self.video else "")
        )

    def plot(self):
        """The final floor beside deliveries over time."""
        from PIL import Image

        floor = (
            Image.fromarray(self.frame) if self.frame is not None else Image.new("RGB", (392, 280), "white")
        )
        chart = throughput_chart({self.policy: self.deliveries_over_time}, floor.height)
        canvas = Image.new("RGB", (floor.width + chart.width, floor.height), "white")
        canvas.paste(floor, (0, 0))
        canvas.paste(chart, (floor.width, 0))
        return canvas


def throughput_chart(curves: dict[str, list[int]], height: int = 280, width: int = 360):
    """Cumulative deliveries against steps, one line per policy (PIL, no matplotlib needed)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    pad = 30
    top = max([max(c) for c in curves.values() if c] + [1])
    longest = max([len(c) for c in curves.values()] + [1])
    draw.rectangle([pad, 10, width - 10, height - pad], outline=(160, 160, 160))
    colours = [(40, 90, 200), (220, 110, 30), (40, 160, 80)]
    for k, (name, curve) in enumerate(curves.items()):
        pts = [
            (pad + (width - pad - 10) * (i + 1) / longest, height - pad - (height - pad - 10) * v / top)
            for i, v in enumerate(curve)
        ]
        if len(pts) > 1:
            draw.line(pts, fill=colours[k % 3], width=2)
        draw.text((pad + 6, 14 + 12 * k), f"{name}: {curve[-1] if curve else 0}", fill=colours[k % 3])
    draw.text((pad, height - pad + 6), f"steps (0-{longest}); deliveries up to {top}", fill=(80, 80, 80))
    return img


class WarehouseRunner(Runner):
    task = WAREHOUSE

    def __init__(self, model_name: str, device: str, precision: str, net) -> None:
        super().__init__(model_name, device, precision)
        self.net = net

    def policy(self, greedy: bool = False, seed: int = 0):
        from .policy import SharedPolicy

        return SharedPolicy(self.net, self.device, greedy=greedy, seed=seed)

    def __call__(
        self, inputs: Any, robots: int, seed: int, policy: str, greedy: bool, record: bool, out: Any
    ):
        """An episode of ``inputs`` steps -> WarehouseResult (a list for a list of lengths)."""
        items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        results = []
        for item in items:
            t0 = time.perf_counter()
            result = self.episode(episode_steps(item), robots, seed, policy, greedy, record, out)
            results.append(
                self.finish(result, item, {"episode": (time.perf_counter() - t0) * 1e3}, started=t0)
            )
        return results if isinstance(inputs, (list, tuple)) else results[0]

    def episode(
        self, steps: int, robots: int, seed: int, policy: str, greedy: bool, record: bool, out: Any
    ) -> WarehouseResult:
        from .env import WarehouseEnv, render_frame
        from .evaluate import play
        from .scripted import ScriptedPolicy

        env = WarehouseEnv(n_robots=robots, max_steps=steps)
        actor = self.policy(greedy, seed) if policy == "learned" else ScriptedPolicy(seed)
        frames: list[np.ndarray] | None = [] if record else None
        stats = play(env, actor, seed, frames)
        video = _write_video(frames, out, f"warehouse-{policy}-{robots}r-seed{seed}") if record else None
        return WarehouseResult(
            model=self.model_name if policy == "learned" else "scripted",
            policy=policy,
            robots=robots,
            steps=steps,
            seed=seed,
            deliveries=stats["deliveries"],
            picks=stats["picks"],
            collisions=stats["collisions"],
            throughput_per_100_steps=round(100.0 * stats["deliveries"] / steps, 3),
            collisions_per_100_steps=round(100.0 * stats["collisions"] / steps, 3),
            deliveries_over_time=stats["curve"],
            video=str(video) if video else None,
            frame=render_frame(env),
        )


def _write_video(frames: list[np.ndarray], out: Any, stem: str):
    from pathlib import Path

    from ..video import VideoWriter, video_path

    writer = VideoWriter(video_path(Path(out) if out else None, WAREHOUSE, stem), fps=8)
    for frame in frames:
        writer.add(frame)
    return writer.close()


def make_runner(model: ModelRef, device: str, precision: str) -> WarehouseRunner:
    """Load the shared policy from the model's safetensors file (no pickle)."""
    from .policy import load_policy

    net, _ = load_policy(model.path, device)
    return WarehouseRunner(model.name, device, precision, net)
