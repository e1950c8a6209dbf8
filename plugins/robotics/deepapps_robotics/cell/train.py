"""``deepapps train pick-and-place``: fine-tune the detector on the cell's own camera views.

The bundled detector learned the six ``scenes`` classes from oblique photos on tables and floors;
from straight above, on a dark belt, recoloured mugs and lego bricks look alike. This renders
labelled cell views (``views.py``) and runs the object-detection task's own ``train`` (found
through the registry) starting from a detector of that task, briefly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deepapps.errors import InputError
from deepapps.resolution import ModelRef


def train(
    model: ModelRef | None,
    dataset: str | None,
    out_dir: Path,
    device: str,
    precision: str,
    views: int,
    epochs: int,
    batch: int,
    lr0: float,
    seed: int,
    start: str | None,
    hours: float | None,
    workers: int,
    progress: bool,
) -> dict[str, Any]:
    """Render ``views`` labelled cell frames (or use ``dataset``, a YOLO data.yaml) and fine-tune."""
    from deepapps.options import check_options
    from deepapps.registry import registry
    from deepapps.specs import resolve

    from .parts import part_classes
    from .views import generate

    if model is not None:
        raise InputError(
            "pick-and-place trains its detector: pass the detector to start from with --start "
            "(an object-detection model), not --model"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = Path(dataset) if dataset else generate(out / "views", views, seed, part_classes())
    render_s = time.perf_counter() - t0
    detection = registry.task("object-detection")
    options = check_options(
        detection.train_options,
        {
            "epochs": epochs,
            "imgsz": 320,
            "batch": batch,
            "seed": seed,
            "optimizer": "AdamW",
            "lr0": lr0,
            "warmup_epochs": 0.5,
            "close_mosaic": max(1, epochs // 3),
            "workers": workers,
            "plots": False,
            "hours": hours,
            "progress": progress,
        },
        "deepapps train pick-and-place",
    )
    summary = resolve(detection.train)(
        model=start or detection.default_model,
        dataset=str(data),
        out_dir=out / "detector",
        device=device,
        precision=precision,
        **options,
    )
    summary.update(
        {
            "views": str(data),
            "render_seconds": round(render_s, 1),
            "use_with": f"deepapps run pick-and-place 20 --detector {summary['model']}",
        }
    )
    return summary
