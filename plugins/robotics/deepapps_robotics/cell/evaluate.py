"""``deepapps eval pick-and-place``: sort randomised parts and report the cell's figures."""

from __future__ import annotations

import time

from deepapps.resolution import ModelRef
from deepapps.results import EvalReport

from ..specs import PICK


def evaluate(
    model: ModelRef,
    dataset: str | None,
    split: str,
    limit: int | None,
    device: str,
    precision: str,
    parts: int,
    seed: int,
    belt_speed: float,
    arrival_rate: float,
    conf: float,
    perception_ms: float,
    dimension_check: bool,
    detector: str,
) -> EvalReport:
    """``parts`` random parts (``--limit`` caps them) from seed ``seed``; all figures of one run."""
    import deepapps

    t0 = time.perf_counter()
    n = min(limit or parts, parts)
    runner = deepapps.load(PICK, model, device=device, precision=precision, detector=detector)
    result = runner(
        n,
        seed=seed,
        belt_speed=belt_speed,
        arrival_rate=arrival_rate,
        conf=conf,
        perception_ms=perception_ms,
        dimension_check=dimension_check,
    )
    metrics = {
        k: getattr(result, k)
        for k in (
            "pick_success_rate",
            "sort_accuracy",
            "delivered_rate",
            "picks_per_hour",
            "mean_cycle_time_s",
            "real_time_factor",
            "parts",
            "in_a_bin",
            "sorted_right",
            "grasp_attempts",
            "perception_wall_ms_p50",
            "classification_errors",
            "placement_errors",
            "dimension_corrections",
        )
    }
    return EvalReport(
        task=PICK,
        model=model.name,
        dataset=dataset or "random-parts",
        split=split,
        n=n,
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra={
            "detector": runner.detector.model_name,
            "seed": seed,
            "belt_speed": belt_speed,
            "arrival_rate": arrival_rate,
            "perception_ms_charged": perception_ms,
            "dimension_check": dimension_check,
            "events": result.events,
            "confusions": result.confusions,
            "sim_seconds": result.sim_seconds,
            "wall_seconds": result.wall_seconds,
        },
    )
