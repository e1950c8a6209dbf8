"""Mask metrics: IoU, and COCO-style mask average precision (AP50-95, 101-point interpolation)."""

from __future__ import annotations

import numpy as np

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def iou_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of every predicted mask (P x H x W) with every ground-truth mask (G x H x W)."""
    if len(pred) == 0 or len(gt) == 0:
        return np.zeros((len(pred), len(gt)))
    p = pred.reshape(len(pred), -1).astype(np.float32)
    g = gt.reshape(len(gt), -1).astype(np.float32)
    inter = p @ g.T
    union = p.sum(1)[:, None] + g.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


class MaskAP:
    """Accumulates detections over images and computes class-wise mask AP, averaged over classes."""

    def __init__(self) -> None:
        self.records: dict[
            int, list[tuple[float, np.ndarray]]
        ] = {}  # class -> (score, matched per threshold)
        self.gt_count: dict[int, int] = {}

    def add(
        self, pred: np.ndarray, scores: np.ndarray, pred_cls: np.ndarray, gt: np.ndarray, gt_cls: np.ndarray
    ) -> None:
        """One image: greedy matching by descending score, per class, at every IoU threshold."""
        for c in np.unique(np.concatenate([pred_cls, gt_cls])).astype(int):
            p_idx = np.flatnonzero(pred_cls == c)
            g_idx = np.flatnonzero(gt_cls == c)
            self.gt_count[c] = self.gt_count.get(c, 0) + len(g_idx)
            order = p_idx[np.argsort(-scores[p_idx], kind="stable")]
            ious = iou_matrix(pred[order], gt[g_idx])
            taken = np.zeros((len(IOU_THRESHOLDS), len(g_idx)), dtype=bool)
            for row, i in enumerate(order):
                matched = np.zeros(len(IOU_THRESHOLDS), dtype=bool)
                for t, thr in enumerate(IOU_THRESHOLDS):
                    cand = np.where(~taken[t] & (ious[row] >= thr), ious[row], -1.0) if len(g_idx) else []
                    if len(cand) and cand.max() >= thr:
                        taken[t, int(np.argmax(cand))] = True
                        matched[t] = True
                self.records.setdefault(c, []).append((float(scores[i]), matched))

    def compute(self) -> dict[str, float]:
        """``{"ap50_95", "ap50", "ap75"}`` averaged over classes that have ground truth."""
        per_class = []
        for c, n_gt in self.gt_count.items():
            if n_gt == 0:
                continue
            recs = sorted(self.records.get(c, []), key=lambda r: -r[0])
            matched = np.array([r[1] for r in recs]).reshape(-1, len(IOU_THRESHOLDS))
            per_class.append([_ap(matched[:, t], n_gt) for t in range(len(IOU_THRESHOLDS))])
        if not per_class:
            return {"ap50_95": 0.0, "ap50": 0.0, "ap75": 0.0}
        table = np.asarray(per_class)
        return {
            "ap50_95": float(table.mean()),
            "ap50": float(table[:, 0].mean()),
            "ap75": float(table[:, 5].mean()),
        }


def _ap(matched: np.ndarray, n_gt: int) -> float:
    """Area under the interpolated precision/recall curve at 101 recall points (COCO)."""
    if len(matched) == 0:
        return 0.0
    tp = np.cumsum(matched)
    fp = np.cumsum(~matched)
    recall = tp / n_gt
    precision = tp / np.maximum(tp + fp, 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    return float(np.mean([precision[i] if i < len(precision) else 0.0 for i in idx]))
