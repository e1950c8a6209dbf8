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
from deepapps.resolution import ModelRef
from deepapps.results import EvalReport

from .specs import EVAL_OPTIONS, TASK

_DEFAULTS = {o.name: o.default for o in EVAL_OPTIONS}  # the declaration is the one source of defaults


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
    model: ModelRef | str | None,
    dataset: str | None = "scenes",
    split: str = "test",
    limit: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    *,
    conf: float = _DEFAULTS["conf"],
    iou: float = _DEFAULTS["iou"],
    imgsz: int | None = _DEFAULTS["imgsz"],
    ultralytics_val: bool = _DEFAULTS["ultralytics_val"],
    scene_count: int = _DEFAULTS["scene_count"],
    scene_seed: int = _DEFAULTS["scene_seed"],
    scene_size: int = _DEFAULTS["scene_size"],
    trust_weights: bool = _DEFAULTS["trust_weights"],
    progress: bool = _DEFAULTS["progress"],
) -> EvalReport:
    """mAP50 and mAP50-95 of ``model`` on ``split`` of ``dataset`` (default: the scenes test split)."""
    import deepapps

    from .train import resolve_data

    t0 = time.perf_counter()
    data = resolve_data(dataset, scene_count, scene_seed, scene_size)
    images = split_images(data, split)[: limit or None]
    if not images:
        raise InputError(f"{data}: split {split!r} has no images")
    settings = {"conf": conf, "iou": iou, "imgsz": imgsz, "max_det": 300}
    detector = deepapps.load(TASK, model, device, precision, trust_weights=trust_weights, **settings)
    _check_classes(detector.names, class_names(data))
    ours = _our_map(detector, images, split, progress)
    settings.update(
        imgsz=imgsz or detector.imgsz, data=str(data), evaluator_seconds=round(time.perf_counter() - t0, 1)
    )
    metrics: dict[str, Any] = {"mAP50": round(ours["mAP50"], 4), "mAP50-95": round(ours["mAP50-95"], 4)}
    if ultralytics_val:
        val = _ultralytics_val(
            detector, data, images, split, {k: settings[k] for k in ("conf", "iou", "imgsz")}
        )
        metrics["ultralytics_mAP50"] = round(val["mAP50"], 4)
        metrics["ultralytics_mAP50-95"] = round(val["mAP50-95"], 4)
        metrics["abs_diff_mAP50-95"] = round(abs(val["mAP50-95"] - ours["mAP50-95"]), 4)
    return EvalReport(
        task=TASK,
        model=detector.model_name,
        dataset=str(dataset or "scenes"),
        split=split,
        n=len(images),
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra={"per_class": ours["per_class"], "instances": ours["instances"], **settings},
    )


def _check_classes(model_names: dict[int, str], data_names: dict[int, str]) -> None:
    if set(model_names.values()) != set(data_names.values()):
        raise InputError(
            f"model classes {sorted(model_names.values())} differ from dataset classes {sorted(data_names.values())}"
        )


def _our_map(detector: Any, images: list[Path], split: str, progress: bool) -> dict[str, Any]:
    """The Detector (the path users call) image by image, scored by deepapps' own evaluator."""
    import torchvision  # noqa: F401  ultralytics then uses its NMS kernel: faster at conf 0.001

    from deepapps.runtime.progress import progress as bar

    from ..scenes.dataset import read_labels
    from .metrics import ImageBoxes, detection_map

    preds, gts = [], []
    for path in bar(images, total=len(images), desc=f"evaluating {split}", unit="img", disable=not progress):
        result = detector(path)
        preds.append(ImageBoxes(result.xyxy, result.class_ids, result.conf))
        label = Path(*[("labels" if p == "images" else p) for p in path.parts]).with_suffix(".txt")
        cls, boxes = read_labels(label, result.width, result.height)
        gts.append(ImageBoxes(boxes, cls))
    return detection_map(preds, gts, detector.names)


def _ultralytics_val(
    detector: Any, data: Path, images: list[Path], split: str, settings: dict[str, Any]
) -> dict[str, float]:
    """ultralytics' own validator on exactly ``images`` (a temporary data yaml listing them)."""
    import yaml

    names = class_names(data)
    with tempfile.TemporaryDirectory(prefix="deepapps-val-") as tmp:
        listing = Path(tmp) / f"{split}.txt"
        listing.write_text("".join(f"{p.resolve()}\n" for p in images))
        cfg = {"path": tmp, "train": str(listing), "val": str(listing), "names": names}
        cfg_path = Path(tmp) / "data.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg))
        model = detector.fresh_yolo()  # val fuses and re-devices the network: keep the shared one intact
        with contextlib.redirect_stdout(sys.stderr):
            m = model.val(
                data=str(cfg_path),
                split="val",
                batch=8,
                device=detector.ultra_device,
                half=detector.precision == "fp16",
                plots=False,
                verbose=False,
                project=tmp,
                name="val",
                **settings,
            )
    return {"mAP50": float(m.box.map50), "mAP50-95": float(m.box.map)}
