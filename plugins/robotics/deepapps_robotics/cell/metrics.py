"""The cell's figures from one run's events (scoring uses the simulator's truth, never the pick path).

- ``grasp_attempts``: every closing of the gripper on a detected part (placed, empty, wedged, slipped);
- ``pick_success_rate``: parts that ended in a bin / grasp attempts;
- ``delivered_rate``: parts that ended in a bin / parts fed;
- ``sort_accuracy``: parts in the bin of their true class / parts that ended in a bin;
- ``picks_per_hour``: parts in a bin per simulated hour, from the first part fed to the last release;
- ``mean_cycle_time_s``: simulated seconds from a presentation (belt halted at the pick point) to release;
- ``real_time_factor``: simulated seconds per wall second of the whole run (perception included).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepapps.results import Result, private


@dataclass(kw_only=True)
class PickPlaceResult(Result):
    parts: int = 0
    placed: int = 0
    in_a_bin: int = 0
    sorted_right: int = 0
    grasp_attempts: int = 0
    pick_success_rate: float = 0.0
    delivered_rate: float = 0.0
    sort_accuracy: float = 0.0
    picks_per_hour: float = 0.0
    mean_cycle_time_s: float = 0.0
    real_time_factor: float = 0.0
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    perception_wall_ms_p50: float = 0.0
    events: dict[str, int] = field(default_factory=dict)
    confusions: dict[str, int] = field(default_factory=dict)  # "true->bin": count, wrong ones only
    classification_errors: int = 0  # the cell chose the wrong class's bin
    placement_errors: int = 0  # the part did not land in the bin the cell chose
    dimension_corrections: int = 0  # footprints whose class the dimension check changed
    failed_items: list[str] = field(default_factory=list)
    video: str | None = None
    frame: Any = private()  # the last camera frame (RGB) with its detections, for plot()
    detections: list = private(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.in_a_bin}/{self.parts} parts in a bin, sort accuracy {self.sort_accuracy:.1%}, "
            f"pick success {self.pick_success_rate:.1%}, {self.picks_per_hour:.0f} picks/h, "
            f"cycle {self.mean_cycle_time_s:.2f} s, RTF {self.real_time_factor:.2f}"
            + (f", video {self.video}" if self.video else "")
        )

    def plot(self):
        """The last camera frame with its detections and grasp axes, above the run's figures."""
        from PIL import Image, ImageDraw

        from .recording import annotate

        rgb = self.frame if self.frame is not None else np.zeros((320, 320, 3), dtype=np.uint8)
        top = Image.fromarray(annotate(rgb, self.detections))
        canvas = Image.new("RGB", (top.width, top.height + 64), "white")
        canvas.paste(top, (0, 0))
        lines = [
            f"{self.in_a_bin}/{self.parts} in a bin  sort {self.sort_accuracy:.1%}  pick {self.pick_success_rate:.1%}",
            f"{self.picks_per_hour:.0f} picks/h  cycle {self.mean_cycle_time_s:.2f} s  RTF {self.real_time_factor:.2f}",
        ]
        ImageDraw.Draw(canvas).text((6, top.height + 8), "\n".join(lines), fill="black")
        return canvas


def summarise(cell, parts: list[str], events: list, wall: float) -> PickPlaceResult:
    kinds = Counter(e.kind for e in events)
    scored = [e.data for e in events if e.kind == "scored"]
    in_bin = [s for s in scored if s["bin"] is not None]
    right = [s for s in in_bin if s["bin"] == s["true_class"]]
    attempts = (
        kinds["placed"]
        + kinds["slip"]
        + sum(
            1
            for e in events
            if e.kind == "regrasp" and e.data.get("reason", "").startswith(("nothing", "the part"))
        )
    )
    fed = [e.time for e in events if e.kind == "fed"]
    releases = [e.time for e in events if e.kind == "placed"]
    span = (max(releases) - min(fed)) if fed and releases else 0.0
    sim = cell.world.time
    c = cell.controller
    return PickPlaceResult(
        parts=len(parts),
        placed=kinds["placed"],
        in_a_bin=len(in_bin),
        sorted_right=len(right),
        grasp_attempts=attempts,
        pick_success_rate=round(len(in_bin) / attempts, 4) if attempts else 0.0,
        delivered_rate=round(len(in_bin) / len(parts), 4) if parts else 0.0,
        sort_accuracy=round(len(right) / len(in_bin), 4) if in_bin else 0.0,
        picks_per_hour=round(3600.0 * len(in_bin) / span, 1) if span > 0 else 0.0,
        mean_cycle_time_s=round(statistics.fmean(c.cycle_times), 3) if c.cycle_times else 0.0,
        real_time_factor=round(sim / wall, 3) if wall > 0 else 0.0,
        sim_seconds=round(sim, 2),
        wall_seconds=round(wall, 2),
        perception_wall_ms_p50=round(float(np.median(c.perception_wall_ms)), 1)
        if c.perception_wall_ms
        else 0.0,
        events=dict(sorted(kinds.items())),
        confusions=dict(
            Counter(f"{s['true_class']}->{s['bin']}" for s in scored if s["bin"] != s["true_class"])
        ),
        classification_errors=sum(s["claimed_bin"] != s["true_class"] for s in scored),
        placement_errors=sum(s["bin"] != s["claimed_bin"] for s in scored),
        dimension_corrections=cell.perception.corrections,
        failed_items=[e.item for e in events if e.kind == "failed"],
        frame=c.last_frame.rgb if c.last_frame is not None else None,
        detections=list(cell.perception.last_detections),
    )
