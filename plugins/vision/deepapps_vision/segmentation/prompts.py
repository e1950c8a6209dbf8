"""Prompts: checking the user's points, labels and boxes, and placing clicks the way SAM's protocol does.

Checks raise a one-line :class:`InputError` naming the problem (a point outside the image, an empty
point list, labels of the wrong length, a box with x2 < x1 ...). The click helpers implement the
corrective-click protocol used for training and evaluation: the first click goes to the point of the
object farthest from its border, each next one to the same spot of the largest error region
(positive inside a missed region, negative inside a wrongly added one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deepapps.errors import InputError


def _as_floats(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be numbers; got {value!r:.80}") from exc
    if not np.isfinite(arr).all():
        raise InputError(f"{what} holds NaN or infinite values")
    return arr


def check_points(
    points: Any, labels: Any, width: int, height: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(N x 2 float array, N int labels)`` or ``(None, None)``; labels default to all positive.

    ``points`` is ``[[x, y], ...]`` or the flat ``[x, y, x, y, ...]`` the command line gives.
    """
    if points is None:
        if labels is not None and len(labels):
            raise InputError("labels were given without points; give --points x,y,... with them")
        return None, None
    arr = _as_floats(points, "points")
    if arr.size == 0:
        raise InputError("empty point list: give at least one x,y point, or leave points out")
    if arr.ndim == 1:
        if arr.size % 2:
            raise InputError(f"points must be x,y pairs; got {arr.size} numbers")
        arr = arr.reshape(-1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(f"points must be N x 2 (x, y); got shape {arr.shape}")
    for x, y in arr:
        if not (0 <= x <= width and 0 <= y <= height):
            raise InputError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
    if labels is None:
        lab = np.ones(len(arr), dtype=np.int64)
    else:
        lab = np.asarray(labels).reshape(-1)
        if len(lab) != len(arr):
            raise InputError(
                f"{len(lab)} label(s) for {len(arr)} point(s): give one label (1 or 0) per point"
            )
        if not np.isin(lab, (0, 1)).all():
            raise InputError(f"labels must be 1 (object) or 0 (background); got {lab.tolist()}")
        lab = lab.astype(np.int64)
    return arr, lab


def check_box(box: Any, width: int, height: int) -> np.ndarray | None:
    """An ``x1, y1, x2, y2`` box clipped to the image, or None; refuses inverted or empty boxes."""
    if box is None:
        return None
    arr = _as_floats(box, "box").reshape(-1)
    if arr.size != 4:
        raise InputError(f"a box is 4 numbers x1,y1,x2,y2; got {arr.size}")
    x1, y1, x2, y2 = arr
    if x2 <= x1 or y2 <= y1:
        raise InputError(
            f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has x2 <= x1 or y2 <= y1; give x1,y1,x2,y2 "
            "with the top-left corner first"
        )
    clipped = np.array([max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)])
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise InputError(f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the {width}x{height} image")
    return clipped


def inner_point(region: np.ndarray) -> tuple[float, float] | None:
    """The pixel centre of ``region`` farthest from its border (image edges count as border)."""
    from scipy.ndimage import distance_transform_edt

    ys, xs = np.nonzero(region)
    if len(xs) == 0:
        return None
    y0, x0 = ys.min(), xs.min()
    crop = region[y0 : ys.max() + 1, x0 : xs.max() + 1]  # the transform only needs the region's box
    dist = distance_transform_edt(np.pad(crop, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x + x0) + 0.5, float(y + y0) + 0.5


def largest_error(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The largest connected error region and its click label (1: missed object, 0: wrongly added)."""
    from scipy.ndimage import label as label_regions

    best: tuple[int, np.ndarray, int] | None = None
    for error, click_label in ((gt & ~pred, 1), (pred & ~gt, 0)):
        if not error.any():
            continue
        regions, n = label_regions(error)
        sizes = np.bincount(regions.ravel(), minlength=n + 1)[1:]
        k = int(np.argmax(sizes)) + 1
        if best is None or sizes[k - 1] > best[0]:
            best = (int(sizes[k - 1]), regions == k, click_label)
    return None if best is None else (best[1], best[2])


def corrective_click(
    pred: np.ndarray, gt: np.ndarray, rng: np.random.Generator | None = None
) -> tuple[float, float, int] | None:
    """The next click ``(x, y, label)`` for prediction ``pred`` of object ``gt``; None when they agree.

    Without ``rng``: the centre of the largest error region (the evaluation protocol). With ``rng``
    (training): a uniformly drawn pixel of that region, so the model sees clicks anywhere in errors.
    """
    found = largest_error(np.asarray(pred, bool), np.asarray(gt, bool))
    if found is None:
        return None
    region, click_label = found
    if rng is None:
        x, y = inner_point(region)
        return x, y, click_label
    ys, xs = np.nonzero(region)
    i = int(rng.integers(len(xs)))
    return float(xs[i]) + 0.5, float(ys[i]) + 0.5, click_label


def flat_pairs(values: Sequence[float] | None) -> list[list[float]] | None:
    """``[x, y, x, y]`` -> ``[[x, y], [x, y]]`` (for reports)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=float).reshape(-1, 2)
    return [[round(float(x), 2), round(float(y), 2)] for x, y in arr]
