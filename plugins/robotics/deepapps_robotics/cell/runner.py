"""The ``pick-and-place`` runner: one call sorts a batch of parts through the simulated cell.

``deepapps.load("pick-and-place")(20)`` feeds 20 random parts (or ``"duck,mug,mug"``: those parts)
and returns a :class:`PickPlaceResult` with the cell's figures; ``record=True`` also writes a video.
The detector is loaded once per runner, through the registry; every call builds a fresh cell.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from deepapps.errors import InputError
from deepapps.resolution import ModelRef
from deepapps.runner import Runner

from ..specs import CELL_MODEL, PICK
from .metrics import PickPlaceResult, summarise

MAX_PARTS = 10_000
SECONDS_PER_PART = 60.0  # simulated-time cap per part: a stuck cell ends the run instead of hanging


def parse_parts(item: Any, classes: tuple[str, ...], rng: np.random.Generator) -> list[str]:
    """``20`` or ``"20"`` -> 20 random classes; ``"duck,mug"`` -> those; anything else is refused."""
    text = str(item).strip()
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= MAX_PARTS:
            raise InputError(f"input {text}: sort between 1 and {MAX_PARTS} parts")
        return [classes[int(k)] for k in rng.integers(len(classes), size=n)]
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = sorted({n for n in names if n not in classes})
    if not names or bad:
        raise InputError(
            f"input {text!r}: give a number of parts (e.g. 20) or part classes from "
            f"{', '.join(classes)} separated by commas" + (f"; unknown: {', '.join(bad)}" if bad else "")
        )
    if len(names) > MAX_PARTS:
        raise InputError(f"input: at most {MAX_PARTS} parts per run")
    return names


def check_input(text: str) -> None:
    """Cheap check before anything loads (the CLI calls it per input)."""
    from .parts import part_classes

    parse_parts(text, part_classes(), np.random.default_rng(0))


class CellRunner(Runner):
    task = PICK

    def __init__(self, model_name: str, device: str, precision: str, detector: Any) -> None:
        super().__init__(model_name, device, precision)
        self.detector = detector

    def __call__(
        self,
        inputs: Any,
        seed: int,
        belt_speed: float,
        arrival_rate: float,
        conf: float,
        perception_ms: float,
        dimension_check: bool,
        slip_every: int,
        dropout_every: int,
        record: bool,
        out: Any,
    ):
        """One job per input: a number of parts or a list of classes -> PickPlaceResult."""
        items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        results = []
        for item in items:
            t0 = time.perf_counter()
            options = {
                "seed": seed,
                "belt_speed": belt_speed,
                "arrival_rate": arrival_rate,
                "conf": conf,
                "perception_ms": perception_ms,
                "dimension_check": dimension_check,
            }
            result = run_job(self.detector, item, options, slip_every, dropout_every, record, out)
            result.model = self.model_name
            results.append(self.finish(result, item, {"cell": (time.perf_counter() - t0) * 1e3}, started=t0))
        return results if isinstance(inputs, (list, tuple)) else results[0]


def run_job(
    detector,
    item: Any,
    options: dict,
    slip_every: int = 0,
    dropout_every: int = 0,
    record: bool = False,
    out: Any = None,
) -> PickPlaceResult:
    """Build a cell, sort the parts, and summarise (the video, if asked, as it goes)."""
    from .build import build_cell
    from .parts import part_classes
    from .recording import Recorder

    classes = part_classes()
    parts = parse_parts(item, classes, np.random.default_rng(options["seed"] + 7))
    cell = build_cell(options, detector_runner=detector)
    recorder = Recorder(cell, out, f"cell-{len(parts)}-parts-seed{options['seed']}") if record else None
    try:
        events, wall = _sort(cell, parts, slip_every, dropout_every)
        result = summarise(cell, parts, events, wall)
    finally:
        video = recorder.close() if recorder is not None else None
        cell.close()
    result.video = str(video) if video else None
    return result


def _sort(cell, parts: list[str], slip_every: int, dropout_every: int) -> tuple[list, float]:
    c, world = cell.controller, cell.world
    for i, cls in enumerate(parts):
        c.submit(f"part-{i:05d}", cls)
    counters = {"grasps": 0, "looks": 0}
    if slip_every or dropout_every:
        _arm_faults(c, world, counters, slip_every, dropout_every)
    t0 = time.perf_counter()
    limit = world.time + SECONDS_PER_PART * len(parts)
    events = []
    while (c.busy or world._released) and world.time < limit and c.fault is None:
        events += c.work(5.0)
    events += c.work(0.0)
    return events, time.perf_counter() - t0


def _arm_faults(c, world, counters: dict, slip_every: int, dropout_every: int) -> None:
    """Fault injection for runs: wrap the controller's look and grasp steps with counters."""
    look, pick = c._locate, c._pick

    def locate(t):
        counters["looks"] += 1
        if dropout_every and counters["looks"] % dropout_every == 0:
            world.camera_dropout += 3
        return look(t)

    def grasp(t, g):
        counters["grasps"] += 1
        if slip_every and counters["grasps"] % slip_every == 0:
            world.slip_armed = True
        return pick(t, g)

    c._locate, c._pick = locate, grasp


def make_runner(model: ModelRef, device: str, precision: str, detector: str) -> CellRunner:
    """The cell controller has no weights of its own; its eyes are an object-detection model."""
    if model.kind != "registered":
        raise InputError(
            f"pick-and-place runs the builtin controller {CELL_MODEL!r}; choose the detector it "
            f"sees with by --detector (an object-detection model name or weights file)"
        )
    from .build import load_detector

    return CellRunner(model.name, device, precision, load_detector(detector, device))
