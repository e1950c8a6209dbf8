"""Perception: detections from the registry's object-detection task plus the depth buffer.

The detector says *what* and roughly *where* (a box); the calibrated depth camera says exactly
where: pixels inside the box that stand above the belt form the part's footprint, whose centroid,
principal axis and top height give the grasp. Nothing here reads the simulator's object poses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import layout as L

MIN_HEIGHT = 0.005  # a pixel belongs to a part when it stands this far above the belt
MIN_PIXELS = 25
MAX_GRASP_WIDTH = 0.074  # the fingers open 8 cm; keep a margin


@dataclass
class Grasp:
    """Where and how to grasp one detected part (world frame)."""

    cls: str
    conf: float
    x: float
    y: float
    z: float  # the grasp point (between the fingertips)
    yaw: float
    width: float  # the part's extent across the fingers
    height: float  # the part's top above the belt
    box: tuple[float, float, float, float]
    pixels: int

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


class DepthCamera:
    """The calibrated overhead camera: turns depth-buffer pixels into world points."""

    def __init__(self, view: list[float], proj: list[float], size: int = L.CAMERA_SIZE) -> None:
        v = np.asarray(view, dtype=np.float64).reshape(4, 4).T
        p = np.asarray(proj, dtype=np.float64).reshape(4, 4).T
        self.inverse = np.linalg.inv(p @ v)
        self.size = size
        u = (2.0 * np.arange(size) + 1.0) / size - 1.0
        self.ndc_x, self.ndc_y = np.meshgrid(u, -u)

    def points(self, depth: np.ndarray) -> np.ndarray:
        """HxWx3 world coordinates of every pixel of a depth buffer (0..1, OpenGL convention)."""
        ndc = np.stack(
            [self.ndc_x, self.ndc_y, 2.0 * depth.astype(np.float64) - 1.0, np.ones_like(self.ndc_x)], -1
        )
        world = ndc @ self.inverse.T
        return world[..., :3] / world[..., 3:4]


def grasp_from_box(points: np.ndarray, box, cls: str, conf: float) -> Grasp | None:
    """The grasp for the part inside ``box`` (pixel xyxy), from the depth points; None if no part stands there."""
    h, w = points.shape[:2]
    x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x1, y1 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    patch = points[y0:y1, x0:x1].reshape(-1, 3)
    on_belt = np.abs(patch[:, 0] - L.BELT_X) < L.BELT_HALF_WIDTH - 0.004
    heights = patch[:, 2] - L.BELT_TOP
    mask = on_belt & (heights > MIN_HEIGHT) & (heights < 0.2)
    if int(mask.sum()) < MIN_PIXELS:
        return None
    xy, hz = patch[mask, :2], heights[mask]
    centre = xy.mean(0)
    closing, width = narrowest_direction(xy - centre)
    yaw = normalise_yaw(closing - math.pi / 2)  # the fingers close along the hand's y axis
    top = float(np.percentile(hz, 95))
    z = L.BELT_TOP + max(0.011, 0.5 * top)  # halfway up: a round part is held at its widest
    return Grasp(
        cls,
        float(conf),
        float(centre[0]),
        float(centre[1]),
        z,
        yaw,
        width,
        top,
        tuple(float(b) for b in box),
        int(mask.sum()),
    )


ANGLES = np.radians(np.arange(0.0, 180.0, 5.0))
ROUND_SLACK = 0.004  # metres: directions this close to the narrowest count as equally narrow


def narrowest_direction(points: np.ndarray) -> tuple[float, float]:
    """(angle, extent) of the direction the fingers close along: the narrowest across the footprint
    (rotating calipers on robust 2-98 % extents; a square gives its side, never its diagonal). Among
    directions within ROUND_SLACK of the narrowest (round parts), the one along the belt wins, so the
    fingers stay clear of the side rails."""
    dirs = np.stack([np.cos(ANGLES), np.sin(ANGLES)], 1)
    proj = points @ dirs.T
    extent = np.percentile(proj, 98, axis=0) - np.percentile(proj, 2, axis=0)
    near = np.flatnonzero(extent <= extent.min() + ROUND_SLACK)
    k = int(near[np.argmin(np.abs(np.cos(ANGLES[near])))])  # closest to the belt's direction (y)
    return float(ANGLES[k]), float(extent[k])


def normalise_yaw(yaw: float) -> float:
    """The equivalent yaw in [-pi/2, pi/2] (a parallel gripper is symmetric under a half turn)."""
    while yaw > math.pi / 2:
        yaw -= math.pi
    while yaw < -math.pi / 2:
        yaw += math.pi
    return yaw


CANDIDATE_CONF = 0.05  # boxes kept as class candidates for the dimension check
MISFIT = 0.05  # a candidate whose class does not fit the measured dimensions counts this much


class Perception:
    """Detector (through ``deepapps.load``) + depth camera -> grasps, most downstream first.

    With ``dimension_check`` the detector is asked for candidates down to CANDIDATE_CONF; for each
    footprint (a part seen once) the class is the detector's most confident one among those whose
    master-data dimensions fit what the depth camera measured. A footprint is kept when its most
    confident candidate reaches ``conf``.
    """

    def __init__(self, detector, camera: DepthCamera, conf: float, dimension_check: bool = True) -> None:
        self.detector = detector
        self.camera = camera
        self.conf = conf
        self.dimension_check = dimension_check
        self.last_detections: list = []
        self.last_result = None
        self.corrections = 0  # footprints whose class the dimension check changed

    def grasps(self, frame) -> list[Grasp]:
        floor = min(self.conf, CANDIDATE_CONF) if self.dimension_check else self.conf
        result = self.detector(frame.rgb, conf=floor)
        self.last_result = result
        points = self.camera.points(frame.depth)
        candidates = []
        for det in result.detections:
            g = grasp_from_box(points, det.xyxy, det.class_name, det.conf)
            if g is not None:
                candidates.append(g)
        out = [g for g in (self._choose(group) for group in _footprints(candidates)) if g is not None]
        out.sort(key=lambda g: g.y)  # the belt runs towards -y: lowest y is most downstream
        self.last_detections = out
        return out

    def _choose(self, group: list[Grasp]) -> Grasp | None:
        best = max(group, key=lambda g: g.conf)
        if best.conf < self.conf:
            return None
        if not self.dimension_check:
            return best
        from .catalogue import fits

        chosen = max(group, key=lambda g: g.conf * (1.0 if fits(g.cls, g.height, g.width) else MISFIT))
        if chosen.cls != best.cls:
            self.corrections += 1
        return chosen


def _footprints(grasps: list[Grasp], radius: float = 0.025) -> list[list[Grasp]]:
    """Candidates grouped by the part they stand on (footprint centres within ``radius``)."""
    groups: list[list[Grasp]] = []
    for g in sorted(grasps, key=lambda g: -g.conf):
        for group in groups:
            if math.hypot(g.x - group[0].x, g.y - group[0].y) <= radius:
                group.append(g)
                break
        else:
            groups.append([g])
    return groups
