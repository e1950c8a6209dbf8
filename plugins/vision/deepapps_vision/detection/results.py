"""Result types of object detection: one image, one video, one export check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepapps.errors import InputError
from deepapps.results import Result, private


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
            return f"ERROR {self.error}"
        found = ", ".join(f"{n} {c}" for n, c in sorted(self.counts.items())) or "nothing"
        return f"{self.width}x{self.height}, {found}"


@dataclass(kw_only=True)
class VideoResult(Result):
    """Detections (and tracks) over a video: per-class counts and the annotated video's path.

    With tracking, ``counts`` is the number of distinct track ids per class; without, the
    largest number seen in one frame.
    """

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
        return f"{self.frames} frames, {kind}: {found}; annotated video {self.output}"


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

    def summary(self) -> str:
        return (
            f"{self.format} model {self.path} ({self.size_mb} MB, {self.imgsz} px): boxes {self.boxes_torch} "
            f"(PyTorch) vs {self.boxes_export}, max |box| diff {self.max_abs_box_diff_px} px, "
            f"max |conf| diff {self.max_abs_conf_diff}"
        )


def to_detection_result(raw: Any, image: Any, names: dict[int, str]) -> DetectionResult:
    """An ultralytics ``Results`` (one image) as a :class:`DetectionResult` with plain Python values."""
    boxes = raw.boxes
    n = len(boxes)
    xyxy = boxes.xyxy.cpu().numpy() if n else np.zeros((0, 4), np.float32)
    confs = boxes.conf.cpu().numpy() if n else np.zeros(0, np.float32)
    cls = boxes.cls.cpu().numpy().astype(int) if n else np.zeros(0, int)
    ids = boxes.id.cpu().numpy().astype(int).tolist() if boxes.is_track else [None] * len(cls)
    detections = [
        Detection(
            xyxy=[round(float(v), 2) for v in b],
            conf=round(float(c), 4),
            class_id=int(k),
            class_name=names.get(int(k), str(k)),
            track_id=t,
        )
        for b, c, k, t in zip(xyxy, confs, cls, ids, strict=True)
    ]
    counts: dict[str, int] = {}
    for d in detections:
        counts[d.class_name] = counts.get(d.class_name, 0) + 1
    height, width = raw.orig_shape[:2]
    return DetectionResult(
        width=int(width), height=int(height), detections=detections, counts=counts, raw=raw, image=image
    )
