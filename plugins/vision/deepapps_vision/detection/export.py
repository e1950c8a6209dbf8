"""Exporting a detector (ONNX, deepapps safetensors, other ultralytics formats) and checking the copy.

An export is checked the way a user would check it: run the exported model and the PyTorch one
on the same images and report the largest box and confidence differences of matched boxes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepapps.errors import DeepAppsError, InputError

from .results import DetectionResult, ExportResult
from .specs import EXPORT_FORMATS as CHECKED_FORMATS

if TYPE_CHECKING:
    from .detector import Detector


def export_target(model_name: str, format: str, imgsz: int, out: str | Path | None) -> Path:
    """Where an export goes: ``out`` (a file, or a folder for the default name) or the cache."""
    from deepapps.runtime.home import cache_dir

    name = f"{Path(model_name).stem}-{imgsz}.{format}"
    if out is None:
        return cache_dir() / "exports" / name
    out = Path(out)
    return out / name if out.is_dir() or not out.suffix else out


def export_model(det: Detector, format: str, imgsz: int, out: str | Path | None = None) -> Path:
    """Export ``det``'s network; returns the file. ``safetensors`` is deepapps' pickle-free format."""
    from . import ultra

    target = export_target(det.model_name, format, imgsz, out)
    target.parent.mkdir(parents=True, exist_ok=True)
    net = det.yolo.model
    if format == "safetensors":
        if not hasattr(net, "yaml"):
            raise InputError(f"model {det.model_name}: only PyTorch models can be saved as safetensors")
        return ultra.save_safetensors(net, target, extra={"imgsz": imgsz, "exported_from": det.model_name})
    kwargs: dict[str, Any] = {"format": format, "imgsz": imgsz, "device": "cpu", "verbose": False}
    if format == "onnx":
        kwargs.update(simplify=False, dynamic=False)  # onnxslim would need a download
    try:
        exported = Path(str(det.yolo.export(**kwargs)))
    except Exception as exc:  # ultralytics raises many kinds; report it in one line
        raise DeepAppsError(f"export to {format!r} failed: {type(exc).__name__}: {exc}") from exc
    if exported.resolve() != target.resolve():
        shutil.move(str(exported), target)
    return target


def check_export(
    det: Detector, items: list[Any], format: str, predict: dict[str, Any], out: str | Path | None
) -> ExportResult:
    """Export (once per format, size and target), run both models on ``items``, report the differences."""
    from deepapps.resolution import resolve_model

    from .detector import Detector

    if format not in CHECKED_FORMATS:
        raise InputError(
            f"export check supports {', '.join(CHECKED_FORMATS)}; got {format!r} (use Detector.export)"
        )
    imgsz = int(predict["imgsz"])
    key = (format, imgsz, str(out))
    if key not in det.exports:
        det.exports[key] = export_model(det, format, imgsz, out)
    path = det.exports[key]
    other = Detector.from_ref(resolve_model(det.task, path), "cpu", "fp32")  # exports run on CPU
    pairs = [(det.detect(item, predict), other.detect(item, predict)) for item in items]
    box_diff, conf_diff = compare(pairs, float(predict["conf"]))
    return ExportResult(
        format=format,
        path=str(path),
        imgsz=imgsz,
        size_mb=round(path.stat().st_size / 1e6, 2),
        images=len(items),
        boxes_torch=sum(len(a.detections) for a, _ in pairs),
        boxes_export=sum(len(b.detections) for _, b in pairs),
        max_abs_box_diff_px=box_diff,
        max_abs_conf_diff=conf_diff,
    )


def compare(pairs: list[tuple[DetectionResult, DetectionResult]], conf: float) -> tuple[float, float]:
    """Largest |box| (px) and |conf| difference between matched boxes of result pairs.

    Boxes are matched greedily by class and IoU; an unmatched box counts as ``inf`` unless its
    confidence is within 0.02 of the threshold (where tiny numeric differences flip it).
    """
    box_diff = conf_diff = 0.0
    for a, b in pairs:
        used: set[int] = set()
        for da in a.detections:
            best = _best_match(da, b, used)
            if best < 0:
                if da.conf - conf > 0.02:
                    box_diff = float("inf")
                continue
            used.add(best)
            db = b.detections[best]
            box_diff = max(box_diff, float(np.abs(np.subtract(da.xyxy, db.xyxy)).max()))
            conf_diff = max(conf_diff, abs(da.conf - db.conf))
        if any(j not in used and db.conf - conf > 0.02 for j, db in enumerate(b.detections)):
            box_diff = float("inf")
    return round(box_diff, 4), round(conf_diff, 5)


def _best_match(da: Any, b: DetectionResult, used: set[int]) -> int:
    from .metrics import box_iou

    best, best_iou = -1, 0.0
    for j, db in enumerate(b.detections):
        if j in used or db.class_id != da.class_id:
            continue
        iou = float(box_iou(np.asarray([da.xyxy]), np.asarray([db.xyxy]))[0, 0])
        if iou > best_iou:
            best, best_iou = j, iou
    return best
