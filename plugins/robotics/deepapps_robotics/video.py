"""MP4 writing for ``--record`` (OpenCV, mp4v): frames in, a file that never overwrites another."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepapps.errors import InputError


def video_path(out: Path | None, task: str, stem: str) -> Path:
    """``out`` as a file (.mp4) or a folder; not set: runs/<task>/. Existing files are kept."""
    if out is not None and Path(out).suffix:
        if Path(out).suffix.lower() != ".mp4":
            raise InputError(f"--out {out}: videos are written as .mp4; name a .mp4 file or a folder")
        target = Path(out)
    else:
        target = Path(out or Path("runs") / task) / f"{stem}.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    base, n = target, 1
    while target.exists():
        target = base.with_name(f"{base.stem}-{n}{base.suffix}")
        n += 1
    return target


class VideoWriter:
    """Collects RGB frames (all the same size) and writes them at ``fps``."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = Path(path), fps
        self._writer = None
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            h, w = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        self._writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        self.frames += 1

    def close(self) -> Path | None:
        if self._writer is None:
            return None
        self._writer.release()
        return self.path
