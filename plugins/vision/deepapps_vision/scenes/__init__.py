"""``scenes``: a rendered object-detection dataset (pybullet, headless).

Real meshes from ``pybullet_data`` are dropped onto tables, trays and floors, photographed
from a random camera under random light in front of real photo backgrounds, and written
in ultralytics YOLO format with exact boxes and per-instance masks taken from pybullet's
segmentation buffer. ``generate(n, seed, size)`` is the whole API.
"""

from __future__ import annotations

from .dataset import dataset_dir, generate, load_split, read_instance_mask, read_labels
from .render import CLASSES, Scene, SceneRenderer, render_scene

__all__ = [
    "CLASSES",
    "Scene",
    "SceneRenderer",
    "dataset_dir",
    "generate",
    "load_split",
    "read_instance_mask",
    "read_labels",
    "render_scene",
]
