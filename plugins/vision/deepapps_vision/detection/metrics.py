"""The project's own detection metrics: mAP@0.5 and mAP@0.5:0.95 (COCO-style).

For every class and IoU threshold, detections from all images are sorted by confidence and
matched greedily to the still-unmatched ground-truth box of the same class with the highest
IoU (a match needs IoU ≥ threshold). AP is the area under the precision envelope sampled at
101 recall points (0, 0.01, ..., 1), as in COCO. Classes without ground truth are left out
of the mean. Numpy only, so the maths is easy to test by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (N, M) of xyxy boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def average_precision(tp: np.ndarray, conf: np.ndarray, n_gt: int) -> float:
    """AP of one class at one threshold: ``tp`` flags (bool) of its detections, their confidences."""
    if n_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    order = np.argsort(-np.asarray(conf), kind="stable")
    hits = np.asarray(tp, dtype=np.float64)[order]
    tps = np.cumsum(hits)
    fps = np.cumsum(1.0 - hits)
    recall = tps / n_gt
    precision = tps / np.maximum(tps + fps, 1e-12)
    # precision envelope: the best precision at this recall or any higher one
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


@dataclass
class ImageBoxes:
    """Boxes of one image: xyxy (N, 4), classes (N,), and confidences (N,) for predictions."""

    xyxy: np.ndarray
    classes: np.ndarray
    conf: np.ndarray | None = None


def match_image(pred: ImageBoxes, gt: ImageBoxes, threshold: float) -> np.ndarray:
    """True-positive flags for ``pred`` at one IoU threshold (greedy by confidence, same class)."""
    n = len(pred.classes)
    tp = np.zeros(n, dtype=bool)
    if n == 0 or len(gt.classes) == 0:
        return tp
    ious = box_iou(pred.xyxy, gt.xyxy)
    taken = np.zeros(len(gt.classes), dtype=bool)
    for i in np.argsort(-pred.conf, kind="stable"):
        candidates = (gt.classes == pred.classes[i]) & ~taken
        if not candidates.any():
            continue
        row = np.where(candidates, ious[i], -1.0)
        j = int(row.argmax())
        if row[j] >= threshold:
            tp[i] = True
            taken[j] = True
    return tp


def detection_map(
    preds: list[ImageBoxes], gts: list[ImageBoxes], names: dict[int, str] | None = None
) -> dict[str, Any]:
    """mAP50, mAP50-95, and per-class AP over a set of images (lists aligned by image)."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth images")
    classes = sorted({int(c) for g in gts for c in g.classes})
    ap = np.full((len(classes), len(IOU_THRESHOLDS)), np.nan)
    for ci, c in enumerate(classes):
        n_gt = int(sum((g.classes == c).sum() for g in gts))
        confs = np.concatenate([p.conf[p.classes == c] for p in preds]) if preds else np.zeros(0)
        for ti, t in enumerate(IOU_THRESHOLDS):
            flags = []
            for p, g in zip(preds, gts, strict=False):
                keep = p.classes == c
                sub = ImageBoxes(p.xyxy[keep], p.classes[keep], p.conf[keep])
                flags.append(
                    match_image(sub, ImageBoxes(g.xyxy[g.classes == c], g.classes[g.classes == c]), t)
                )
            tp = np.concatenate(flags) if flags else np.zeros(0, dtype=bool)
            ap[ci, ti] = average_precision(tp, confs, n_gt)
    names = names or {}
    per_class = {
        names.get(c, str(c)): {"AP50": round(float(ap[i, 0]), 4), "AP50-95": round(float(ap[i].mean()), 4)}
        for i, c in enumerate(classes)
    }
    return {
        "mAP50": float(np.nanmean(ap[:, 0])) if classes else 0.0,
        "mAP50-95": float(np.nanmean(ap)) if classes else 0.0,
        "per_class": per_class,
        "images": len(gts),
        "instances": int(sum(len(g.classes) for g in gts)),
    }
