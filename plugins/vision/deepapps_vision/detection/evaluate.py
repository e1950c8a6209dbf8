"""``deepapps eval object-detection``: mAP on a held-out split, ours and ultralytics' side by side.

Our figure runs the :class:`Detector` (the same path users call) image by image and scores
it with :mod:`.metrics`; ultralytics' ``val`` runs on exactly the same image list. Both use
conf 0.001 and NMS IoU 0.7 (the usual mAP protocol), at the model's image size.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from deepapps.errors import InputError
from deepapps.results import EvalReport


def split_images(data_yaml: Path, split: str) -> list[Path]:
    """Image paths of ``split`` in a YOLO data yaml (a folder or a .txt list)."""
    import yaml

    cfg = yaml.safe_load(Path(data_yaml).read_text())
    if split not in cfg:
        raise InputError(
            f"{data_yaml} has no {split!r} split (it has: {', '.join(k for k in cfg if k in ('train', 'val', 'test'))})"
        )
    root = Path(cfg.get("path") or Path(data_yaml).parent)
    if not root.is_absolute():
        root = (Path(data_yaml).parent / root).resolve()
    entry = root / cfg[split]
    if entry.is_dir():
        from deepapps.runtime.images import iter_image_paths

        return iter_image_paths(entry)
    if entry.suffix == ".txt" and entry.exists():
        return [
            Path(line.strip()) if Path(line.strip()).is_absolute() else root / line.strip()
            for line in entry.read_text().splitlines()
            if line.strip()
        ]
    raise InputError(
        f"{data_yaml}: split {split!r} points to {entry}, which is neither a folder nor a .txt list"
    )


def class_names(data_yaml: Path) -> dict[int, str]:
    import yaml

    names = yaml.safe_load(Path(data_yaml).read_text()).get("names", {})
    return dict(enumerate(names)) if isinstance(names, list) else {int(k): v for k, v in names.items()}


def evaluate(
    model: Any = None,
    dataset: str | None = "scenes",
    split: str = "test",
    limit: int | None = None,
    device: str = "cpu",
    *,
    imgsz: int | None = None,
    conf: float = 0.001,
    iou: float = 0.7,
    ultralytics_val: bool = True,
    progress: bool = True,
    **options: Any,
) -> EvalReport:
    """mAP50 and mAP50-95 of ``model`` on ``split`` of ``dataset`` (default: scenes test split)."""
    from deepapps.runtime.progress import progress as bar

    from ..scenes.dataset import read_labels
    from .detector import Detector
    from .metrics import ImageBoxes, detection_map
    from .train import resolve_data

    t0 = time.perf_counter()
    data = resolve_data(dataset, **options)
    images = split_images(data, split)
    if limit:
        images = images[: int(limit)]
    if not images:
        raise InputError(f"{data}: split {split!r} has no images")
    names = class_names(data)
    detector = Detector(model, device, conf=conf, iou=iou, imgsz=imgsz, max_det=300)
    if set(detector.names.values()) != set(names.values()):
        raise InputError(
            f"model classes {sorted(detector.names.values())} differ from dataset classes {sorted(names.values())}"
        )
    preds, gts = [], []
    for path in bar(images, total=len(images), desc=f"evaluating {split}", unit="img", disable=not progress):
        result = detector.run_one(path)
        preds.append(ImageBoxes(result.xyxy, result.class_ids, result.conf))
        label = Path(*[("labels" if p == "images" else p) for p in path.parts]).with_suffix(".txt")
        cls, boxes = read_labels(label, result.width, result.height)
        gts.append(ImageBoxes(boxes, cls))
    ours = detection_map(preds, gts, detector.names)
    seconds_ours = time.perf_counter() - t0

    metrics: dict[str, Any] = {"mAP50": round(ours["mAP50"], 4), "mAP50-95": round(ours["mAP50-95"], 4)}
    extra: dict[str, Any] = {
        "per_class": ours["per_class"],
        "instances": ours["instances"],
        "imgsz": detector.imgsz,
        "conf": conf,
        "iou": iou,
        "data": str(data),
        "evaluator_seconds": round(seconds_ours, 1),
    }
    if ultralytics_val:
        val = _ultralytics_val(detector, data, images, split)
        metrics["ultralytics_mAP50"] = round(val["mAP50"], 4)
        metrics["ultralytics_mAP50-95"] = round(val["mAP50-95"], 4)
        metrics["abs_diff_mAP50-95"] = round(abs(val["mAP50-95"] - ours["mAP50-95"]), 4)
    return EvalReport(
        task="object-detection",
        model=detector.model_name,
        dataset=str(dataset or "scenes"),
        split=split,
        n=len(images),
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra=extra,
    )


def _ultralytics_val(detector: Any, data: Path, images: list[Path], split: str) -> dict[str, float]:
    """ultralytics' own validator on exactly ``images`` (a temporary data yaml listing them)."""
    import yaml

    names = class_names(data)
    with tempfile.TemporaryDirectory(prefix="deepapps-val-") as tmp:
        listing = Path(tmp) / f"{split}.txt"
        listing.write_text("".join(f"{p.resolve()}\n" for p in images))
        cfg = {"path": tmp, "train": str(listing), "val": str(listing), "names": names}
        cfg_path = Path(tmp) / "data.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg))
        from . import ultra

        model = (
            ultra.load_safetensors(detector.yolo.overrides["model"])
            if str(detector.yolo.overrides.get("model", "")).endswith(".safetensors")
            else detector.yolo
        )
        with contextlib.redirect_stdout(sys.stderr):
            m = model.val(
                data=str(cfg_path),
                split="val",
                imgsz=detector.imgsz,
                batch=8,
                conf=detector.defaults["conf"],
                iou=detector.defaults["iou"],
                device=detector._ultra_device,
                plots=False,
                verbose=False,
                project=tmp,
                name="val",
            )
    return {"mAP50": float(m.box.map50), "mAP50-95": float(m.box.map)}
