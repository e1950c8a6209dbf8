"""``deepapps eval segmentation``: prompt quality on held-out images, and detect then segment.

Protocol, per ground-truth object (the SAM / RITM corrective-click protocol):

- 1 click: a positive click at the object's point farthest from its border; three candidate masks,
  the one with the highest predicted IoU is kept (``miou_1click``; ``miou_1click_oracle`` keeps the best).
- box: the object's tight box, one mask (``miou_box``).
- more clicks: each next click goes to the point farthest from the border of the largest error region
  (positive in a missed region, negative in a wrong one), with the previous low-resolution logits as mask
  input. ``clicks_to_target`` is the first click count reaching ``iou_target`` (``max_clicks`` if never).
- detect then segment (scenes): the detector's boxes (through the registry) prompt one mask each, scored
  by the detector's confidence; COCO mask AP over IoU 0.50:0.95 against the exact instance masks.
- segment everything (scenes, ``everything``): the grid's masks ranked by predicted IoU, classes ignored;
  mask AP50-95, and the share of objects one of its masks covers at IoU >= 0.5.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from deepapps.errors import InputError
from deepapps.resolution import ModelRef
from deepapps.results import EvalReport

from .data import Sample, check_dataset, coins, load_scene, scene_items
from .metrics import MaskAP, iou_matrix, mask_iou
from .prompts import corrective_click, inner_point


def score_object(runner: Any, sample: Sample, k: int, max_clicks: int, iou_target: float) -> dict[str, Any]:
    """Box IoU, 1-click IoU (chosen and oracle), IoU after each click, and clicks to the target."""
    gt = sample.mask(k)
    box_masks, _, _ = runner.predict(box=sample.box(k), multimask=False)
    x, y = inner_point(gt)
    points, labels = [[x, y]], [1]
    masks, _, logits = runner.predict(points=points, labels=labels, multimask=True)
    pred, logit = masks[0], logits[0]
    ious = [mask_iou(pred, gt)]
    oracle = max(mask_iou(m, gt) for m in masks)
    while len(ious) < max_clicks and (ious[-1] < iou_target or len(ious) < 3):
        click = corrective_click(pred, gt)
        if click is None:
            break
        points.append([click[0], click[1]])
        labels.append(click[2])
        masks, _, logits = runner.predict(points=points, labels=labels, multimask=False, mask_input=logit)
        pred, logit = masks[0], logits[0]
        ious.append(mask_iou(pred, gt))
    reached = [i + 1 for i, v in enumerate(ious) if v >= iou_target]
    return {
        "box": mask_iou(box_masks[0], gt),
        "one": ious[0],
        "oracle": oracle,
        "ious": ious,
        "clicks": reached[0] if reached else max_clicks,
        "reached": bool(reached),
    }


def score_samples(
    runner: Any, samples: list[Sample], max_clicks: int, iou_target: float, progress: bool = True
) -> dict[str, float]:
    """Mean prompt metrics over every object of ``samples``."""
    from deepapps.runtime.progress import progress as bar

    rows = []
    for sample in bar(samples, desc="prompt protocol", unit="img", disable=not progress):
        runner.set_image(sample.image)
        rows += [score_object(runner, sample, k, max_clicks, iou_target) for k in range(1, sample.count + 1)]
    if not rows:
        raise InputError("no objects to evaluate in these images")
    at3 = [r["ious"][min(2, len(r["ious"]) - 1)] for r in rows]
    target = int(round(iou_target * 100))
    return {
        "objects": len(rows),
        "miou_1click": float(np.mean([r["one"] for r in rows])),
        "miou_1click_oracle": float(np.mean([r["oracle"] for r in rows])),
        "miou_box": float(np.mean([r["box"] for r in rows])),
        "miou_3clicks": float(np.mean(at3)),
        f"clicks_to_{target}": float(np.mean([r["clicks"] for r in rows])),
        f"reached_{target}_within_{max_clicks}": float(np.mean([r["reached"] for r in rows])),
    }


def detect_then_segment_ap(
    runner: Any, samples: list[Sample], boxes_model: str | None, boxes_conf: float, progress: bool = True
) -> dict[str, float]:
    """Mask AP of detector boxes + SAM masks, and of the filled boxes alone (the baseline SAM improves on)."""
    from deepapps.runtime.progress import progress as bar
    from deepapps_vision.scenes import CLASSES

    index = {name: i for i, name in enumerate(CLASSES)}
    sam_ap, box_ap = MaskAP(), MaskAP()
    for sample in bar(samples, desc="detect then segment", unit="img", disable=not progress):
        result = runner.detect_then_segment(sample.image, "object-detection", boxes_model, boxes_conf)
        gt = _object_masks(sample)
        gt_cls = np.asarray(sample.classes[: sample.count])
        pred_cls = np.asarray([index.get(m.label, -1) for m in result.instances])
        scores = np.asarray([m.det_conf for m in result.instances], dtype=np.float64)
        masks = result.masks.reshape(len(result.instances), *sample.instances.shape)
        sam_ap.add(masks, scores, pred_cls, gt, gt_cls)
        box_ap.add(_filled_boxes(result, sample.instances.shape), scores, pred_cls, gt, gt_cls)
    ours, boxes = sam_ap.compute(), box_ap.compute()
    return {
        "dts_mask_ap50_95": ours["ap50_95"],
        "dts_mask_ap50": ours["ap50"],
        "dts_mask_ap75": ours["ap75"],
        "boxes_as_masks_ap50_95": boxes["ap50_95"],
    }


def everything_ap(runner: Any, samples: list[Sample], settings: dict[str, Any], progress: bool = True):
    """Segment everything against the exact masks, classes ignored: mask AP ranked by predicted IoU, the
    share of objects one of its masks covers at IoU >= 0.5, and masks per image."""
    from deepapps.runtime.progress import progress as bar

    ap, covered, objects, found = MaskAP(), 0, 0, 0
    for sample in bar(samples, desc="segment everything", unit="img", disable=not progress):
        result = runner.segment_everything(sample.image, **settings)
        gt = _object_masks(sample)
        masks = result.masks.reshape(len(result.instances), *sample.instances.shape)
        ap.add(masks, result.scores.astype(np.float64), np.zeros(len(masks)), gt, np.zeros(sample.count))
        if sample.count and len(masks):
            covered += int((iou_matrix(masks, gt).max(0) >= 0.5).sum())
        objects, found = objects + sample.count, found + len(masks)
    scores = ap.compute()
    return {
        "everything_mask_ap50_95": scores["ap50_95"],
        "everything_mask_ap50": scores["ap50"],
        "everything_recall50": covered / max(objects, 1),
        "everything_masks_per_image": found / max(len(samples), 1),
    }


def _object_masks(sample: Sample) -> np.ndarray:
    """The sample's ground-truth masks, one per object (K x H x W; an empty array without objects)."""
    return np.stack([sample.mask(k) for k in range(1, sample.count + 1)]) if sample.count else np.zeros((0,))


def _filled_boxes(result: Any, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros((len(result.instances), *shape), dtype=bool)
    for i, inst in enumerate(result.instances):
        x1, y1, x2, y2 = (int(round(v)) for v in inst.prompt_box)
        out[i, y1:y2, x1:x2] = True
    return out


def _samples(
    name: str,
    split: str,
    limit: int | None,
    scene_count: int,
    scene_seed: int,
    scene_size: int,
    progress: bool,
) -> list[Sample]:
    if name == "coins":
        if split != "test":
            raise InputError("coins is one photo in a single split: use --split test")
        return [coins()]
    items = scene_items(name, split, scene_count, scene_seed, scene_size, progress=progress)[:limit]
    return [load_scene(it) for it in items]


def evaluate(
    model: ModelRef,
    dataset: str | None,
    split: str,
    limit: int | None,
    device: str,
    precision: str,
    max_clicks: int,
    iou_target: float,
    detect: bool,
    boxes_model: str | None,
    boxes_conf: float,
    everything: bool,
    points_per_side: int | None,
    pred_iou_thresh: float | None,
    stability_thresh: float | None,
    iou: float | None,
    remask: bool | None,
    refine: str | None,
    refine_radius: float | None,
    refine_eps: float | None,
    zoom: str | None,
    zoom_max: float | None,
    zoom_context: float | None,
    refine_holes: float | None,
    refine_threshold: float | None,
    max_points: int | None,
    click_check: str | None,
    scene_count: int,
    scene_seed: int,
    scene_size: int,
    progress: bool,
) -> EvalReport:
    """Prompt metrics on a held-out split (and detect-then-segment AP on scenes)."""
    import deepapps
    from deepapps.runtime.threads import set_threads

    from .specs import everything_settings, mask_settings

    masking, grid = mask_settings(locals()), everything_settings(locals())

    set_threads()  # DEEPAPPS_THREADS, else every core
    t0 = time.perf_counter()
    name = check_dataset(dataset)
    samples = _samples(name, split, limit, scene_count, scene_seed, scene_size, progress)
    runner = deepapps.load("segmentation", model, device=device, precision=precision, **masking)
    calls = runner.encoder_calls
    metrics: dict[str, Any] = score_samples(runner, samples, max_clicks, iou_target, progress)
    if detect and name != "coins":
        metrics.update(detect_then_segment_ap(runner, samples, boxes_model, boxes_conf, progress))
    if everything and name != "coins":
        metrics.update(everything_ap(runner, samples, grid, progress))
    metrics = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    return EvalReport(
        task="segmentation",
        model=model.name,
        dataset=name,
        split=split,
        n=len(samples),
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra={
            "protocol": "center clicks on the largest error region, previous logits as mask input; "
            "1-click keeps the highest predicted IoU of 3 masks; with max_points > 0 the decoder gets the "
            "first click and the latest ones; with click_check not off, a next click keeps the candidate mask that "
            "contradicts the fewest clicks",
            "max_clicks": max_clicks,
            "iou_target": iou_target,
            "encoder_calls": runner.encoder_calls - calls,
            "refinement": runner.refinement.to_dict(),
            "zoom": runner.zoom.to_dict(),
            "max_points": runner.max_points,
            "click_check": runner.click_check,
            "detector": (boxes_model or "object-detection default") if detect and name != "coins" else None,
            "everything": runner.resolved_everything(**grid) if everything and name != "coins" else None,
        },
    )


__all__ = ["detect_then_segment_ap", "evaluate", "everything_ap", "score_object", "score_samples"]
