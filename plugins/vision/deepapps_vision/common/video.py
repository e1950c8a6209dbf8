"""Video in and out for vision tasks (OpenCV), with errors a user can act on.

Frames are RGB ``uint8`` numpy arrays. ``read_frames`` checks that the file opens, yields at
least one frame, and that a frame is no larger than the image pixel cap (``DEEPAPPS_MAX_PIXELS``,
the same limit images have: a crafted header cannot make every frame a giant allocation);
``VideoWriter`` writes mp4 (``mp4v``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepapps.errors import InputError
from deepapps.inputs import VIDEO_SUFFIXES  # the core's list: what `deepapps run` accepts as a video


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoInfo:
    fps: float
    width: int
    height: int
    frames: int  # as the container reports it (0 when unknown)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open ``path`` and read its first frame; raise :class:`InputError` if that fails."""
    import cv2

    p = Path(path)
    if not p.exists():
        raise InputError(f"video {p}: file not found")
    if p.stat().st_size == 0:
        raise InputError(f"video {p}: file is empty (0 bytes)")
    cap = cv2.VideoCapture(str(p))
    try:
        declared = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if cap.isOpened() and min(declared) > 0:  # the container's frame size, checked before decoding
            check_frame_size(*declared, p)
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            raise InputError(
                f"video {p}: cannot be decoded (no readable frame); is it a real video? "
                f"supported containers: {', '.join(sorted(VIDEO_SUFFIXES))}"
            )
        check_frame_size(frame.shape[1], frame.shape[0], p)
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        return VideoInfo(
            fps=fps if 0 < fps < 1000 else 25.0,
            width=frame.shape[1],
            height=frame.shape[0],
            frames=int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
        )
    finally:
        cap.release()


def check_frame_size(width: int, height: int, label: str | os.PathLike) -> None:
    """Refuse frames over the image pixel cap (``DEEPAPPS_MAX_PIXELS``, default 64 MP)."""
    from deepapps.runtime.images import check_frame_pixels

    check_frame_pixels(width, height, f"video {label}")


def read_frames(
    path: str | os.PathLike, max_frames: int | None = None, stride: int = 1
) -> Iterator[np.ndarray]:
    """RGB frames of a video (every ``stride``-th, at most ``max_frames``)."""
    import cv2

    if int(stride) < 1:
        raise InputError(f"video {path}: stride must be a whole number of at least 1, got {stride}")
    if max_frames is not None and int(max_frames) < 1:
        raise InputError(f"video {path}: max_frames must be at least 1, got {max_frames}")
    info = probe(path)
    cap = cv2.VideoCapture(str(path))
    try:
        i = kept = 0
        while max_frames is None or kept < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            if frame.shape[:2] != (info.height, info.width):
                check_frame_size(frame.shape[1], frame.shape[0], path)
            if i % stride == 0:
                kept += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


class VideoWriter:
    """Write RGB frames to an mp4 file; the size is fixed by the first frame."""

    def __init__(self, path: str | os.PathLike, fps: float = 25.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self._writer = None
        self.frames = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            h, w = frame_rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"video {self.path}: OpenCV cannot write this file; use a .mp4 name")
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """Write RGB frames to ``path`` (mp4)."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)
