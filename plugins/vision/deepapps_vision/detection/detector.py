"""The object-detection runner: ``Detector`` wraps an ultralytics YOLO.

```python
from deepapps_vision import Detector
det = Detector()                         # bundled yolo11n-half-scenes (= deepapps.load("object-detection"))
det = Detector("best.onnx", conf=0.4)    # a name, alias or local file; call defaults in the constructor
r = det("photo.jpg", conf=0.4)           # DetectionResult
r.detections[0].class_name, r.xyxy, r.plot().save("out.png"), r.to_json()
det(["a.jpg", "folder/"])                # list; a bad file gives a result with .error set
det("clip.mp4", track=True)              # VideoResult: annotated video + per-class counts
det.export("onnx")                       # path of an ONNX model (onnxruntime runs it)
```
Options are declared in :mod:`.specs` and checked by the core before a call reaches this code.
Images go through :func:`deepapps.runtime.images.load_image` (clear errors, RGB).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from deepapps.errors import DeepAppsError, InputError
from deepapps.resolution import ModelRef
from deepapps.runner import Runner, describe_input

from ..common.video import is_video
from .results import Detection, DetectionResult, ExportResult, NoPicture, VideoResult, to_detection_result
from .specs import TASK

__all__ = [
    "Detection",
    "DetectionResult",
    "Detector",
    "ExportResult",
    "NoPicture",
    "VideoResult",
    "make_runner",
]


class Detector(Runner):
    """Object detection with YOLO; see the module docstring for examples.

    ``Detector(model, device, precision, trust_weights=..., conf=..., ...)`` resolves ``model``
    (registered name or alias, local file) and ``device`` like ``deepapps.load``; the call options
    given here become this detector's defaults. ``deepapps.load`` builds it through
    :func:`make_runner` instead, with everything already resolved.
    """

    task = TASK

    def __init__(
        self,
        model: str | os.PathLike | ModelRef | None = None,
        device: str = "auto",
        precision: str = "auto",
        *,
        trust_weights: bool = False,
        conf: float | None = None,
        iou: float | None = None,
        classes: Any = None,
        imgsz: int | None = None,
        max_det: int | None = None,
    ) -> None:
        from deepapps.options import check_options
        from deepapps.registry import registry
        from deepapps.resolution import resolve_model
        from deepapps.runtime.device import select_device
        from deepapps.runtime.precision import select_precision

        spec = registry.task(TASK)
        ref = resolve_model(spec, model)
        device = select_device(device)
        self._load(ref, device, select_precision(precision, device, spec.precisions), trust_weights)
        given = {"conf": conf, "iou": iou, "classes": classes, "imgsz": imgsz, "max_det": max_det}
        given = {k: v for k, v in given.items() if v is not None}
        if isinstance(given.get("classes"), (list, tuple)):
            given["classes"] = [str(c) for c in given["classes"]]
        self._bound = check_options(self.call_options, given, f"task {TASK!r}", fill_defaults=False)

    @classmethod
    def from_ref(cls, model: ModelRef, device: str, precision: str, trust_weights: bool = False) -> Detector:
        """A detector for an already resolved model, device and precision (what the core hands over)."""
        det = cls.__new__(cls)
        det._load(model, device, precision, trust_weights)
        return det

    def _load(self, model: ModelRef, device: str, precision: str, trust_weights: bool) -> None:
        from .loading import load_yolo, trained_imgsz, ultra_device

        if precision == "fp16" and device == "cpu":
            raise DeepAppsError("object detection runs fp16 on a GPU only; use --precision fp32 on the CPU")
        t0 = time.perf_counter()
        Runner.__init__(self, model_name=model.name, device=device, precision=precision)
        self.model_ref = model
        self.trust_weights = trust_weights
        self.yolo = load_yolo(model, trust_weights)
        self.names: dict[int, str] = {int(k): str(v) for k, v in self.yolo.names.items()}
        self.imgsz = int(trained_imgsz(model, self.yolo) or 640)
        self.ultra_device = ultra_device(device)
        self.exports: dict[tuple, Path] = {}
        self.load_ms = (time.perf_counter() - t0) * 1e3

    def fresh_yolo(self) -> Any:
        """Another copy of the network (tracking keeps per-video state on the model object)."""
        from .loading import load_yolo

        return load_yolo(self.model_ref, self.trust_weights)

    # options ---------------------------------------------------------------------------
    def class_ids(self, classes: Any) -> list[int] | None:
        """Class names and/or ids (a list or a comma-separated string) as ids; ``None`` keeps all."""
        if classes is None or classes == [] or classes == "":
            return None
        if isinstance(classes, (str, int)):
            classes = [c for c in str(classes).split(",") if c.strip()]
        by_name = {v: k for k, v in self.names.items()}
        ids = []
        for c in classes:
            text = str(c).strip()
            if text.isdigit() and int(text) in self.names:
                ids.append(int(text))
            elif text in by_name:
                ids.append(by_name[text])
            else:
                valid = ", ".join(f"{k}={v}" for k, v in sorted(self.names.items()))
                raise InputError(f"class {c!r} is not one of this model's classes: {valid}")
        return ids

    def predict_options(self, conf: float, iou: float, classes: Any, imgsz: int | None, max_det: int) -> dict:
        """Checked call options in ultralytics' ``predict`` spelling."""
        return {
            "conf": conf,
            "iou": iou,
            "classes": self.class_ids(classes),
            "max_det": max_det,
            "imgsz": imgsz or self.imgsz,
            "half": self.precision == "fp16",
            "device": self.ultra_device,
            "verbose": False,
        }

    # calling ---------------------------------------------------------------------------
    def __call__(
        self,
        inputs: Any,
        conf: float,
        iou: float,
        classes: Any,
        imgsz: int | None,
        max_det: int,
        track: bool,
        tracker: str,
        max_frames: int | None,
        stride: int,
        keep_frames: bool,
        out: Path | None,
        export: str | None,
    ) -> Any:
        """One image -> DetectionResult; a list or folder -> list; a video -> VideoResult.

        ``track=True`` tracks objects through a video; ``export="onnx"`` exports the model and
        checks it against PyTorch on the given images (an ExportResult).
        """
        predict = self.predict_options(conf, iou, classes, imgsz, max_det)
        video = {
            "track": track,
            "tracker": tracker,
            "out": out,
            "max_frames": max_frames,
            "stride": stride,
            "keep_frames": keep_frames,
        }
        many = isinstance(inputs, (list, tuple)) or (
            isinstance(inputs, (str, os.PathLike)) and Path(inputs).is_dir()
        )
        if export:
            from .export import check_export

            return check_export(self, self._expand(inputs if many else [inputs]), export, predict, out)
        if many:
            return self._batch(self._expand(inputs), predict, video)
        if _is_video_path(inputs):
            from .video import run_video

            return run_video(self, inputs, predict, **video)
        if track:
            raise InputError("track=True needs a video file (.mp4, .avi, ...); for images leave it out")
        return self.detect(inputs, predict)

    def _expand(self, items: Any) -> list[Any]:
        """Folders become the images inside them (sorted); other items pass through."""
        from deepapps.runtime.images import IMAGE_SUFFIXES, iter_image_paths

        out: list[Any] = []
        for item in items if isinstance(items, (list, tuple)) else [items]:
            if isinstance(item, (str, os.PathLike)) and Path(item).is_dir():
                found = iter_image_paths(item)
                if not found:
                    raise InputError(f"folder {item} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
                out.extend(found)
            else:
                out.append(item)
        return out

    def _batch(self, items: list[Any], predict: dict[str, Any], video: dict[str, Any]) -> list[Any]:
        """Every item on its own: a bad one becomes a result with ``error`` set, the others still run."""
        from .video import run_video

        not_videos = [describe_input(i) for i in items if not _is_video_path(i)]
        if video["track"] and not_videos:
            raise InputError(f"track=True needs video files; these are not: {', '.join(not_videos[:5])}")
        results: list[Any] = []
        for item in items:
            try:
                if _is_video_path(item):
                    results.append(run_video(self, item, predict, **video))
                else:
                    results.append(self.detect(item, predict))
            except InputError as exc:
                print(f"deepapps: skipping {describe_input(item)}: {exc}", file=sys.stderr)
                failed = DetectionResult(error=str(exc))
                results.append(self.finish(failed, item, {}, started=time.perf_counter()))
        return results

    def detect(self, item: Any, predict: dict[str, Any]) -> DetectionResult:
        """One image with ready ``predict`` options (see :meth:`predict_options`)."""
        from deepapps.runtime.images import load_image

        from . import ultra

        t0 = time.perf_counter()
        image = load_image(item)
        t1 = time.perf_counter()
        raw = self.yolo.predict(image, predictor=ultra.predictor_class(), **predict)[0]
        t2 = time.perf_counter()
        result = to_detection_result(raw, image, self.names)
        speed = raw.speed or {}
        stages = {
            "read": (t1 - t0) * 1e3,
            "preprocess": float(speed.get("preprocess", 0.0)),
            "forward": float(speed.get("inference", 0.0)),
            "postprocess": float(speed.get("postprocess", 0.0)) + (time.perf_counter() - t2) * 1e3,
        }
        return self.finish(result, item, stages, started=t0)

    def track(self, path: str | os.PathLike, **options: Any) -> VideoResult:
        """Track objects through a video (ultralytics' ByteTrack by default); options as for a call."""
        return self(path, track=True, **options)

    def export(
        self, format: str = "onnx", imgsz: int | None = None, out: str | os.PathLike | None = None
    ) -> Path:
        """Export the model (``onnx``, ``safetensors``; other ultralytics formats pass through); returns its path."""
        from .export import export_model

        return export_model(self, format, int(imgsz or self.imgsz), out)


def _is_video_path(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike)) and is_video(item)


def make_runner(model: ModelRef, device: str, precision: str, trust_weights: bool) -> Detector:
    """TaskSpec runner factory: ``deepapps.load("object-detection", model, trust_weights=...)``."""
    return Detector.from_ref(model, device, precision, trust_weights=trust_weights)
