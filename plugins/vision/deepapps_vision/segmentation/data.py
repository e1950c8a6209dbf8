"""Data for segmentation: the ``scenes`` renders with exact instance masks, and a real photo (coins).

``scenes`` comes from :mod:`deepapps_vision.scenes` (same generator, seed and splits as object
detection, so the test split is held out from both). ``coins`` is scikit-image's photo of 24 coins;
its ground truth is made by thresholding and labelling (dark < 30 and bright > 150 pixels seed a
watershed on the Sobel edges, holes filled, regions under 50 px dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepapps.errors import InputError

DATASETS = ("scenes", "coins")


@dataclass
class Sample:
    """One image with its instances: ``instances`` is H x W, k = object k (1-based), 0 = none."""

    name: str
    image: np.ndarray
    instances: np.ndarray
    classes: list[int]

    @property
    def count(self) -> int:
        return int(self.instances.max()) if self.instances.size else 0

    def mask(self, k: int) -> np.ndarray:
        return self.instances == k

    def box(self, k: int) -> np.ndarray:
        """Tight ``x1, y1, x2, y2`` box of object ``k`` (x2/y2 exclusive, in pixels)."""
        ys, xs = np.nonzero(self.instances == k)
        return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def check_dataset(dataset: str | None) -> str:
    """``scenes`` (default), ``coins``, or a scenes-layout folder / data.yaml."""
    name = dataset or "scenes"
    if name in DATASETS or Path(name).expanduser().exists():
        return name
    raise InputError(
        f"unknown dataset {name!r} for segmentation; use scenes, coins or a scenes data.yaml folder"
    )


def scene_items(
    dataset: str, split: str, scene_count: int, scene_seed: int, scene_size: int, progress: bool = True
) -> list[dict[str, Any]]:
    """The items (image/label/mask paths) of a scenes split, rendering the dataset first if needed."""
    from deepapps_vision.scenes import load_split

    if dataset != "scenes":
        return load_split(split, data=Path(dataset).expanduser())
    return load_split(split, n=scene_count, seed=scene_seed, size=scene_size, progress=progress)


def load_scene(item: dict[str, Any]) -> Sample:
    """A scenes item as a :class:`Sample` (classes from its label file)."""
    from PIL import Image

    image = np.asarray(Image.open(item["image"]).convert("RGB"))
    instances = np.asarray(Image.open(item["mask"]))
    lines = Path(item["label"]).read_text().split("\n") if Path(item["label"]).exists() else []
    classes = [int(line.split()[0]) for line in lines if line.strip()]
    return Sample(name=Path(item["image"]).name, image=image, instances=instances, classes=classes)


def coins() -> Sample:
    """scikit-image's coins photo (303 x 384, grey) with 24 coin masks from thresholding and labelling."""
    from scipy import ndimage
    from skimage import data, filters, segmentation

    grey = data.coins()
    markers = np.zeros_like(grey, dtype=np.uint8)
    markers[grey < 30] = 1
    markers[grey > 150] = 2
    coin = ndimage.binary_fill_holes(segmentation.watershed(filters.sobel(grey), markers) == 2)
    labels, n = ndimage.label(coin)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = np.flatnonzero(sizes >= 50)
    keep = keep[keep > 0]
    instances = np.zeros_like(labels, dtype=np.uint8)
    for new, old in enumerate(keep, start=1):
        instances[labels == old] = new
    image = np.repeat(grey[:, :, None], 3, axis=2)
    return Sample(name="coins", image=image, instances=instances, classes=[0] * len(keep))
