"""``--record``: a video of the cell at 10 frames per simulated second: a wide view of the cell beside
the overhead camera's last frame with its detections."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..video import VideoWriter, video_path
from .world import TIME_STEP

FPS = 10
VIEW = (400, 300)
CAMERA = 300


def annotate(rgb: np.ndarray, grasps: list, size: int | None = None) -> np.ndarray:
    """The camera frame with each detection's box, class and confidence, and its grasp axis."""
    import math

    from PIL import Image, ImageDraw

    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    for g in grasps:
        d = g if isinstance(g, dict) else g.to_dict()
        x0, y0, x1, y1 = d["box"]
        draw.rectangle([x0, y0, x1, y1], outline=(255, 60, 60), width=2)
        draw.text((x0 + 2, max(0, y0 - 11)), f"{d['cls']} {d['conf']:.2f}", fill=(255, 230, 60))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        # image up = world +x, image right = world -y (camera up vector (1, 0, 0), looking down)
        angle = d["yaw"] + math.pi / 2
        dx, dy = -math.sin(angle) * 14, -math.cos(angle) * 14
        draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=(60, 220, 255), width=2)
    if size:
        img = img.resize((size, size))
    return np.asarray(img)


class Recorder:
    """Attaches to a cell's world; ``close()`` writes the file and returns its path."""

    def __init__(self, cell, out, stem: str) -> None:
        self.cell = cell
        self.writer = VideoWriter(video_path(Path(out) if out else None, "pick-and-place", stem), FPS)
        cell.world.hooks.append((max(1, int(round(1.0 / (FPS * TIME_STEP)))), self.capture))

    def capture(self) -> None:
        world, c = self.cell.world, self.cell.controller
        view = world.overview(*VIEW)
        if c.last_frame is not None:
            cam = annotate(c.last_frame.rgb, self.cell.perception.last_detections, CAMERA)
        else:
            cam = np.zeros((CAMERA, CAMERA, 3), dtype=np.uint8)
        canvas = np.zeros((max(VIEW[1], CAMERA), VIEW[0] + CAMERA, 3), dtype=np.uint8)
        canvas[: VIEW[1], : VIEW[0]] = view
        canvas[:CAMERA, VIEW[0] :] = cam
        self.writer.add(canvas)

    def close(self) -> Path | None:
        return self.writer.close()
