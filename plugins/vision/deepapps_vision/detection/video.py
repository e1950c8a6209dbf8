"""Detection and tracking over a video: frames in, an annotated mp4 and per-class counts out."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepapps.errors import InputError

from .results import DetectionResult, VideoResult, to_detection_result
from .specs import TASK, TRACKERS

if TYPE_CHECKING:
    from .detector import Detector

VIDEO_OUT_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")


def output_path(source: str | os.PathLike, out: str | os.PathLike | None) -> Path:
    """The annotated video's path: ``out`` when it names a video file, else ``<input>_annotated.mp4``
    in ``out`` (a folder) or in ``runs/object-detection``, never overwriting a file already there."""
    if out is not None and Path(out).suffix.lower() in VIDEO_OUT_SUFFIXES:
        return Path(out)
    folder = Path(out) if out is not None else Path("runs") / TASK
    stem = f"{Path(source).stem}_annotated"
    target, n = folder / f"{stem}.mp4", 1
    while target.exists():
        target, n = folder / f"{stem}-{n}.mp4", n + 1
    return target


def check_tracker(tracker: str) -> None:
    if tracker not in TRACKERS and not Path(tracker).is_file():
        raise InputError(
            f"tracker {tracker!r}: use {' or '.join(TRACKERS)}, or an existing tracker yaml file"
        )


@dataclass
class _Tally:
    """What a video run keeps: per-frame counts, distinct track ids, peaks, a few frame results."""

    keep_all: bool
    per_frame: list[int] = field(default_factory=list)
    tracks: dict[str, set[int]] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    kept: list[DetectionResult] = field(default_factory=list)
    last: DetectionResult | None = None

    def add(self, result: DetectionResult) -> None:
        self.per_frame.append(len(result.detections))
        for name, count in result.counts.items():
            self.peak[name] = max(self.peak.get(name, 0), count)
        for d in result.detections:
            if d.track_id is not None:
                self.tracks.setdefault(d.class_name, set()).add(d.track_id)
        if self.keep_all or not self.kept:
            self.kept.append(result)
        else:
            self.last = result

    def frames(self) -> list[DetectionResult]:
        """Every frame when kept, else the first and the last (for ``plot()``)."""
        return self.kept + ([self.last] if self.last is not None else [])

    def counts(self, tracked: bool) -> dict[str, int]:
        counts = {k: len(v) for k, v in self.tracks.items()} if tracked else self.peak
        return dict(sorted(counts.items()))


def run_video(
    det: Detector,
    path: str | os.PathLike,
    predict: dict[str, Any],
    *,
    track: bool,
    tracker: str,
    out: str | os.PathLike | None,
    max_frames: int | None,
    stride: int,
    keep_frames: bool,
) -> VideoResult:
    """Detect (``track``: track) objects in every ``stride``-th frame; write an annotated video."""
    from PIL import Image

    from ..common.video import VideoWriter, probe, read_frames
    from . import ultra

    info = probe(path)
    if track:
        check_tracker(tracker)
    model = det.fresh_yolo() if track else det.yolo  # a tracker's state must not stay on the shared model
    target = output_path(path, out)
    tally = _Tally(keep_all=keep_frames)
    t0 = time.perf_counter()
    with VideoWriter(target, fps=info.fps / stride) as writer:
        for i, frame in enumerate(read_frames(path, max_frames=max_frames, stride=stride)):
            bgr = np.ascontiguousarray(frame[:, :, ::-1])
            if track:
                raw = model.track(bgr, persist=i > 0, tracker=tracker, **predict)[0]
            else:
                raw = model.predict(bgr, predictor=ultra.predictor_class(), **predict)[0]
            result = to_detection_result(raw, Image.fromarray(frame), det.names)
            result.source = f"{path}#{i}"
            result.timings = {k: float(v) for k, v in (raw.speed or {}).items()}
            writer.write(np.asarray(result.plot()))
            tally.add(result)
    video = VideoResult(
        frames=len(tally.per_frame),
        fps=info.fps,
        width=info.width,
        height=info.height,
        tracked=track,
        tracker=tracker if track else None,
        counts=tally.counts(track),
        detections_per_frame=tally.per_frame,
        output=str(target),
        frame_results=tally.frames(),
    )
    per_frame = (time.perf_counter() - t0) * 1e3 / max(1, len(tally.per_frame))
    return det.finish(video, path, {"per_frame": per_frame}, started=t0)
