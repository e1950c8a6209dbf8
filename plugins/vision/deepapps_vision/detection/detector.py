"""The object-detection runner: ``Detector`` wraps an ultralytics YOLO.

```python
from deepapps_vision.detection import Detector
det = Detector()                         # bundled yolo11n-half-scenes
r = det("photo.jpg", conf=0.4)           # DetectionResult
r.detections[0].class_name, r.xyxy, r.plot().save("out.png"), r.to_json()
det(["a.jpg", "folder/"])                # list; a bad file gives a result with .error set
det("clip.mp4", track=True)              # VideoResult: annotated video + per-class counts
det.export("onnx")                       # path of an ONNX model (onnxruntime runs it)
```
Images go through :func:`deepapps.runtime.images.load_image` (clear errors, RGB).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepapps.errors import DeepAppsError, InputError, ModelNotAvailableError
from deepapps.results import Result, private
from deepapps.runner import Runner
from deepapps.runtime.images import IMAGE_SUFFIXES, iter_image_paths, load_image

from ..common.video import is_video

DEFAULT_MODEL = "yolo11n-half-scenes"


# results ---------------------------------------------------------------------------------
class NoPicture(InputError, NotImplementedError):
    """``plot()`` of a result whose input failed (the CLI's ``--save`` skips these)."""


@dataclass
class Detection:
    """One box: pixel ``xyxy`` in the original image, confidence, class, and track id when tracking."""

    xyxy: list[float]
    conf: float
    class_id: int
    class_name: str
    track_id: int | None = None


@dataclass(kw_only=True)
class DetectionResult(Result):
    """Detections in one image. ``error`` is set (and detections empty) when a batch item was unusable."""

    source: str = ""
    width: int = 0
    height: int = 0
    detections: list[Detection] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    raw: Any = private()  # ultralytics Results
    image: Any = private()  # the RGB PIL image

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def xyxy(self) -> np.ndarray:
        return np.asarray([d.xyxy for d in self.detections], dtype=np.float32).reshape(-1, 4)

    @property
    def conf(self) -> np.ndarray:
        return np.asarray([d.conf for d in self.detections], dtype=np.float32)

    @property
    def class_ids(self) -> np.ndarray:
        return np.asarray([d.class_id for d in self.detections], dtype=np.int64)

    @property
    def class_names(self) -> list[str]:
        return [d.class_name for d in self.detections]

    def plot(self, labels: bool = True, conf: bool = True, line_width: int | None = None):
        """The image with boxes, class names and confidences drawn (PIL RGB)."""
        from PIL import Image

        if self.error is not None:
            raise NoPicture(f"no picture for {self.source}: {self.error}")
        if self.raw is None:
            return self.image.copy()
        bgr = self.raw.plot(labels=labels, conf=conf, line_width=line_width)
        return Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))

    def summary(self) -> str:
        if self.error:
            return f"{self.source}: ERROR {self.error}"
        found = ", ".join(f"{n} {c}" for n, c in sorted(self.counts.items())) or "nothing"
        ms = sum(self.timings.values())
        return f"{self.source}: {self.width}x{self.height}, {found} ({ms:.1f} ms)"


@dataclass(kw_only=True)
class VideoResult(Result):
    """Detections (and tracks) over a video: per-class counts and the annotated video's path.

    With tracking, ``counts`` is the number of distinct track ids per class; without, the
    largest number seen in one frame.
    """

    source: str = ""
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    tracked: bool = False
    tracker: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    detections_per_frame: list[int] = field(default_factory=list)
    output: str | None = None
    frame_results: list[DetectionResult] = private(default_factory=list)

    def plot(self):
        """The last annotated frame."""
        if not self.frame_results:
            raise InputError(f"video {self.source}: no frames were processed")
        return self.frame_results[-1].plot()

    def summary(self) -> str:
        found = ", ".join(f"{n} {c}" for n, c in sorted(self.counts.items())) or "nothing"
        kind = "tracks" if self.tracked else "max per frame"
        return f"{self.source}: {self.frames} frames, {kind}: {found}; annotated video {self.output}"


@dataclass(kw_only=True)
class ExportResult(Result):
    """An exported model and how closely it reproduces the PyTorch boxes on the given images."""

    format: str = "onnx"
    path: str = ""
    imgsz: int = 0
    size_mb: float = 0.0
    images: int = 0
    boxes_torch: int = 0
    boxes_export: int = 0
    max_abs_box_diff_px: float | None = None
    max_abs_conf_diff: float | None = None


# loading ---------------------------------------------------------------------------------
IMAGE_OPTIONS = ("conf", "iou", "classes", "imgsz", "max_det")
VIDEO_OPTIONS = ("track", "tracker", "video_out", "max_frames", "stride", "keep_frames")


def check_options(options: dict[str, Any], video: bool) -> None:
    """Refuse options the detector does not know (a typo such as ``cnf`` must not pass silently)."""
    allowed = IMAGE_OPTIONS + (VIDEO_OPTIONS if video else ())
    unknown = sorted(set(options) - set(allowed))
    if not unknown:
        return
    if not video and set(unknown) <= set(VIDEO_OPTIONS):
        raise InputError(f"option(s) {', '.join(unknown)} apply to video inputs only")
    raise InputError(
        f"unknown object-detection option(s): {', '.join(unknown)}; valid: {', '.join(IMAGE_OPTIONS)}"
        f" (images), {', '.join(VIDEO_OPTIONS)} (videos), export and out (export)"
    )


def resolve_model_arg(model: Any) -> Any:
    """A registered model name becomes its ModelSpec; ``None`` the default; anything else passes through."""
    from deepapps.registry import registry

    if model is None:
        return registry.model(DEFAULT_MODEL)
    if isinstance(model, str) and registry.has_model(model):
        return registry.model(model)
    return model


def load_model(model: Any = None, device: str = "cpu", **_: Any):
    """An ``ultralytics.YOLO`` from a ModelSpec, a ``.safetensors`` file, any ultralytics
    weights/yaml/ONNX path, or a hub name (which ultralytics can fetch only when online)."""
    from deepapps.runtime.pull import model_path
    from deepapps.specs import ModelSpec

    from . import ultra

    model = resolve_model_arg(model)
    if isinstance(model, ModelSpec):
        path = model_path(model)
        return ultra.load_safetensors(path) if str(path).endswith(".safetensors") else ultra.yolo(path)
    text = str(model)
    if text.endswith(".safetensors"):
        if not Path(text).exists():
            raise ModelNotAvailableError(f"model file {text} does not exist")
        return ultra.load_safetensors(text)
    if text.endswith((".pt", ".onnx", ".torchscript")) and not Path(text).exists():
        if os.sep in text or "/" in text:
            raise ModelNotAvailableError(f"model file {text} does not exist")
    try:
        return ultra.yolo(text)
    except (FileNotFoundError, ConnectionError, OSError) as exc:
        raise ModelNotAvailableError(
            f"model {text!r} is not on this machine and cannot be downloaded offline ({exc}); "
            "pass a local .pt/.onnx/.yaml file or a registered model name"
        ) from exc


def _ultra_device(device: str) -> str:
    if device.startswith("cuda"):
        return device.partition(":")[2] or "0"
    return device


# the runner ------------------------------------------------------------------------------
class Detector(Runner):
    """Object detection with YOLO; see the module docstring for examples.

    Options (constructor defaults, overridable per call): ``conf`` (0.25), ``iou`` (NMS IoU,
    0.7), ``classes`` (ids or names to keep), ``imgsz`` (model's training size or 640),
    ``max_det`` (300).
    """

    task = "object-detection"

    def __init__(
        self,
        model: Any = None,
        device: str = "cpu",
        *,
        conf: float = 0.25,
        iou: float = 0.7,
        classes: Any = None,
        imgsz: int | None = None,
        max_det: int = 300,
        **options: Any,
    ) -> None:
        from deepapps.runtime.device import select_device
        from deepapps.specs import ModelSpec

        device = select_device(device)
        model = resolve_model_arg(model)
        name = model.name if isinstance(model, ModelSpec) else str(model)
        super().__init__(model_name=name, device=device, **options)
        self.model_ref = model
        self.yolo = load_model(model, device)
        self.names: dict[int, str] = {int(k): v for k, v in self.yolo.names.items()}
        self.imgsz = int(imgsz or self._trained_imgsz() or 640)
        self.defaults = {"conf": conf, "iou": iou, "classes": classes, "max_det": max_det}
        self._ultra_device = _ultra_device(device)

    def _trained_imgsz(self) -> int | None:
        from deepapps.specs import ModelSpec

        if isinstance(self.model_ref, ModelSpec) or str(self.model_ref).endswith(".safetensors"):
            from deepapps.runtime.checkpoint import read_metadata
            from deepapps.runtime.pull import model_path

            path = model_path(self.model_ref) if isinstance(self.model_ref, ModelSpec) else self.model_ref
            meta = read_metadata(path)
            return int(meta["imgsz"]) if "imgsz" in meta else None
        args = getattr(self.yolo.model, "args", None)
        if (
            isinstance(args, dict)
            and isinstance(args.get("imgsz"), int)
            and str(self.model_ref).endswith(".pt")
        ):
            return int(args["imgsz"])
        return None

    # options ---------------------------------------------------------------------------
    def class_ids(self, classes: Any) -> list[int] | None:
        """Turn class names and/or ids (list or comma string) into ids; ``None`` keeps all."""
        if classes is None or classes == [] or classes == "":
            return None
        if isinstance(classes, (str, int)):
            classes = [c for c in str(classes).split(",") if c != ""]
        by_name = {v: k for k, v in self.names.items()}
        ids = []
        for c in classes:
            text = str(c).strip()
            if text.lstrip("-").isdigit() and int(text) in self.names:
                ids.append(int(text))
            elif text in by_name:
                ids.append(by_name[text])
            else:
                raise InputError(
                    f"class {c!r} is not one of this model's classes: "
                    + ", ".join(f"{k}={v}" for k, v in sorted(self.names.items()))
                )
        return ids

    def _options(self, **kw: Any) -> dict[str, Any]:
        check_options(kw, video=False)
        merged = {k: (kw[k] if kw.get(k) is not None else v) for k, v in self.defaults.items()}
        conf, iou = float(merged["conf"]), float(merged["iou"])
        if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
            raise InputError(f"conf and iou must lie in [0, 1]; got conf={conf}, iou={iou}")
        imgsz = int(kw.get("imgsz") or self.imgsz)
        if imgsz < 32:
            raise InputError(f"imgsz must be at least 32 pixels, got {imgsz}")
        return {
            "conf": conf,
            "iou": iou,
            "classes": self.class_ids(merged["classes"]),
            "max_det": int(merged["max_det"]),
            "imgsz": imgsz,
            "device": self._ultra_device,
            "verbose": False,
        }

    # calling ---------------------------------------------------------------------------
    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """One image -> DetectionResult; a list or folder -> list; a video -> VideoResult.

        ``track=True`` tracks objects through a video; ``export="onnx"`` exports the model and
        checks it against PyTorch on the given images (returns an ExportResult).
        """
        export = kwargs.pop("export", None)
        check_options({k: v for k, v in kwargs.items() if not (export and k == "out")}, video=True)
        if export:
            items = self._expand(inputs if isinstance(inputs, (list, tuple)) else [inputs])
            return self.check_export(items, format=str(export), **kwargs)
        track = bool(kwargs.pop("track", False))
        if isinstance(inputs, (str, os.PathLike)) and is_video(inputs):
            return self.video(inputs, track=track, **kwargs)
        if isinstance(inputs, (list, tuple)) or (
            isinstance(inputs, (str, os.PathLike)) and Path(inputs).is_dir()
        ):
            items = self._expand(list(inputs) if isinstance(inputs, (list, tuple)) else [inputs])
            not_videos = [str(i) for i in items if not (isinstance(i, (str, os.PathLike)) and is_video(i))]
            if track and not_videos:
                raise InputError(f"track=True needs video files; these are not: {', '.join(not_videos[:5])}")
            return self._batch(items, track=track, **kwargs)
        if track:
            raise InputError("track=True needs a video file (.mp4, .avi, ...); for images leave it out")
        return self.run_one(inputs, **kwargs)

    def _expand(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, (str, os.PathLike)) and Path(item).is_dir():
                found = iter_image_paths(item)
                if not found:
                    raise InputError(f"folder {item} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
                out.extend(found)
            else:
                out.append(item)
        return out

    def _batch(self, items: list[Any], track: bool = False, **kwargs: Any) -> list[Any]:
        results: list[Any] = []
        for item in items:
            try:
                if isinstance(item, (str, os.PathLike)) and is_video(item):
                    results.append(self.video(item, track=track, **kwargs))
                    continue
                image_kwargs = {k: v for k, v in kwargs.items() if k not in VIDEO_OPTIONS}
                results.append(self.run_one(item, **image_kwargs))
            except InputError as exc:
                label = str(item) if isinstance(item, (str, os.PathLike)) else type(item).__name__
                print(f"deepapps: skipping {label}: {exc}", file=sys.stderr)
                results.append(
                    DetectionResult(task=self.task, model=self.model_name, source=label, error=str(exc))
                )
        return results

    def run_one(self, item: Any, **kwargs: Any) -> DetectionResult:
        t0 = time.perf_counter()
        image = load_image(item)
        t1 = time.perf_counter()
        raw = self.yolo.predict(image, **self._options(**kwargs))[0]
        t2 = time.perf_counter()
        source = str(item) if isinstance(item, (str, os.PathLike)) else type(item).__name__
        result = self._to_result(raw, image, source)
        t3 = time.perf_counter()
        speed = raw.speed or {}
        result.timings = {
            "load": (t1 - t0) * 1e3,
            "preprocess": float(speed.get("preprocess", 0.0)),
            "forward": float(speed.get("inference", 0.0)),
            "postprocess": float(speed.get("postprocess", 0.0)) + (t3 - t2) * 1e3,
            "total": (t3 - t0) * 1e3,
        }
        return result

    def _to_result(self, raw: Any, image: Any, source: str) -> DetectionResult:
        boxes = raw.boxes
        xyxy = boxes.xyxy.cpu().numpy() if len(boxes) else np.zeros((0, 4), np.float32)
        confs = boxes.conf.cpu().numpy() if len(boxes) else np.zeros(0, np.float32)
        cls = boxes.cls.cpu().numpy().astype(int) if len(boxes) else np.zeros(0, int)
        ids = boxes.id.cpu().numpy().astype(int).tolist() if boxes.is_track else [None] * len(cls)
        detections = [
            Detection(
                xyxy=[round(float(v), 2) for v in b],
                conf=round(float(c), 4),
                class_id=int(k),
                class_name=self.names.get(int(k), str(k)),
                track_id=t,
            )
            for b, c, k, t in zip(xyxy, confs, cls, ids, strict=False)
        ]
        counts: dict[str, int] = {}
        for d in detections:
            counts[d.class_name] = counts.get(d.class_name, 0) + 1
        w, h = (
            image.size
            if hasattr(image, "size") and not isinstance(image, np.ndarray)
            else raw.orig_shape[::-1]
        )
        return DetectionResult(
            task=self.task,
            model=self.model_name,
            source=source,
            width=int(w),
            height=int(h),
            detections=detections,
            counts=counts,
            raw=raw,
            image=image,
        )

    # video -----------------------------------------------------------------------------
    def video(
        self,
        path: str | os.PathLike,
        *,
        track: bool = False,
        tracker: str = "bytetrack.yaml",
        video_out: str | os.PathLike | None = None,
        max_frames: int | None = None,
        stride: int = 1,
        keep_frames: bool = False,
        **kwargs: Any,
    ) -> VideoResult:
        """Detect (``track=True``: track) objects in every ``stride``-th frame; write an annotated mp4."""
        from PIL import Image

        from ..common.video import VideoWriter, probe, read_frames

        info = probe(path)
        opts = self._options(**kwargs)
        if track and tracker not in {"bytetrack.yaml", "botsort.yaml"} and not Path(tracker).exists():
            raise InputError(f"tracker {tracker!r}: use bytetrack.yaml, botsort.yaml or a tracker yaml file")
        model = load_model(self.model_ref, self.device) if track else self.yolo  # trackers stay off self.yolo
        out = (
            Path(video_out)
            if video_out
            else Path("runs") / "object-detection" / f"{Path(path).stem}_annotated.mp4"
        )
        seen: dict[str, set[int]] = {}
        peak: dict[str, int] = {}
        per_frame: list[int] = []
        frames: list[DetectionResult] = []
        last: DetectionResult | None = None
        t0 = time.perf_counter()
        with VideoWriter(out, fps=info.fps / max(1, stride)) as writer:
            for i, frame in enumerate(read_frames(path, max_frames=max_frames, stride=stride)):
                bgr = np.ascontiguousarray(frame[:, :, ::-1])
                if track:
                    raw = model.track(bgr, persist=i > 0, tracker=tracker, **opts)[0]
                else:
                    raw = model.predict(bgr, **opts)[0]
                result = self._to_result(raw, Image.fromarray(frame), f"{path}#{i}")
                result.timings = {k: float(v) for k, v in (raw.speed or {}).items()}
                writer.write(np.asarray(result.plot()))
                per_frame.append(len(result.detections))
                for name, c in result.counts.items():
                    peak[name] = max(peak.get(name, 0), c)
                for d in result.detections:
                    if d.track_id is not None:
                        seen.setdefault(d.class_name, set()).add(d.track_id)
                if keep_frames or i == 0:
                    frames.append(result)
                else:
                    last = result
        seconds = time.perf_counter() - t0
        if not keep_frames and len(per_frame) > 1:
            frames.append(last)  # first and last frame are kept for plot()
        counts = {k: len(v) for k, v in seen.items()} if track else peak
        return VideoResult(
            task=self.task,
            model=self.model_name,
            source=str(path),
            frames=len(per_frame),
            fps=info.fps,
            width=info.width,
            height=info.height,
            tracked=track,
            tracker=tracker if track else None,
            counts=dict(sorted(counts.items())),
            detections_per_frame=per_frame,
            output=str(out),
            frame_results=frames,
            timings={"total": seconds * 1e3, "per_frame": seconds * 1e3 / max(1, len(per_frame))},
        )

    def track(self, path: str | os.PathLike, **kwargs: Any) -> VideoResult:
        """Track objects through a video (ultralytics' ByteTrack by default)."""
        return self.video(path, track=True, **kwargs)

    # export ----------------------------------------------------------------------------
    def export(
        self, format: str = "onnx", imgsz: int | None = None, out: str | os.PathLike | None = None
    ) -> Path:
        """Export the model (``onnx``; other ultralytics formats pass through); returns its path."""
        import shutil

        from deepapps.runtime.home import cache_dir

        imgsz = int(imgsz or self.imgsz)
        kwargs: dict[str, Any] = {"format": format, "imgsz": imgsz, "device": "cpu", "verbose": False}
        if format == "onnx":
            kwargs.update(simplify=False, dynamic=False)  # onnxslim would need a download
        try:
            exported = Path(str(self.yolo.export(**kwargs)))
        except Exception as exc:
            raise DeepAppsError(f"export to {format!r} failed: {type(exc).__name__}: {exc}") from exc
        target = (
            Path(out) if out else cache_dir() / "exports" / f"{Path(self.model_name).stem}-{imgsz}.{format}"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        if exported.resolve() != target.resolve():
            shutil.move(str(exported), target)
        return target

    def check_export(self, items: list[Any], format: str = "onnx", **kwargs: Any) -> ExportResult:
        """Export, run both models on ``items`` and report the largest box/confidence difference."""
        if format != "onnx":
            raise InputError(
                f"export check supports onnx only; got {format!r} (use Detector.export for others)"
            )
        imgsz = int(kwargs.get("imgsz") or self.imgsz)
        path = self.export(format, imgsz=imgsz, out=kwargs.pop("out", None))
        other = Detector(str(path), device="cpu", imgsz=imgsz, **self.defaults)
        box_diff, conf_diff, n_t, n_o = compare(self, other, items, **kwargs)
        return ExportResult(
            task=self.task,
            model=self.model_name,
            format=format,
            path=str(path),
            imgsz=imgsz,
            size_mb=round(path.stat().st_size / 1e6, 2),
            images=len(items),
            boxes_torch=n_t,
            boxes_export=n_o,
            max_abs_box_diff_px=box_diff,
            max_abs_conf_diff=conf_diff,
        )


def compare(
    a: Detector, b: Detector, items: list[Any], **kwargs: Any
) -> tuple[float | None, float | None, int, int]:
    """Largest |box| (px) and |conf| difference between two detectors' matched boxes on ``items``.

    Boxes are matched greedily by class and IoU; an unmatched box counts as ``inf`` unless its
    confidence is within 0.02 of the threshold (where tiny numeric differences flip it).
    """
    from .metrics import box_iou

    box_diff = conf_diff = 0.0
    n_a = n_b = 0
    conf_t = float(kwargs.get("conf") or a.defaults["conf"])
    for item in items:
        ra, rb = a.run_one(item, **kwargs), b.run_one(item, **kwargs)
        n_a, n_b = n_a + len(ra.detections), n_b + len(rb.detections)
        used: set[int] = set()
        for _i, da in enumerate(ra.detections):
            best, best_iou = -1, 0.0
            for j, db in enumerate(rb.detections):
                if j in used or db.class_id != da.class_id:
                    continue
                iou = float(box_iou(np.asarray([da.xyxy]), np.asarray([db.xyxy]))[0, 0])
                if iou > best_iou:
                    best, best_iou = j, iou
            if best < 0:
                if da.conf - conf_t > 0.02:
                    box_diff = float("inf")
                continue
            used.add(best)
            db = rb.detections[best]
            box_diff = max(box_diff, float(np.abs(np.subtract(da.xyxy, db.xyxy)).max()))
            conf_diff = max(conf_diff, abs(da.conf - db.conf))
        for j, db in enumerate(rb.detections):
            if j not in used and db.conf - conf_t > 0.02:
                box_diff = float("inf")
    return round(box_diff, 4), round(conf_diff, 5), n_a, n_b


def make_runner(model: Any = None, device: str = "cpu", **options: Any) -> Detector:
    """TaskSpec runner factory: ``deepapps.load("object-detection", model=..., conf=...)``."""
    return Detector(model, device, **options)
