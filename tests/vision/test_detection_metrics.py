"""The project's mAP evaluator against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from deepapps_vision.detection.metrics import ImageBoxes, average_precision, box_iou, detection_map


def _boxes(xyxy, classes, conf=None):
    return ImageBoxes(
        np.asarray(xyxy, dtype=float).reshape(-1, 4),
        np.asarray(classes, dtype=int),
        None if conf is None else np.asarray(conf, dtype=float),
    )


def test_box_iou_by_hand():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [20, 20, 30, 32]])
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0, 0.0])
    assert box_iou([[20, 20, 30, 30]], [[20, 20, 30, 32]])[0, 0] == pytest.approx(100 / 120)


def test_average_precision_by_hand():
    # TP, TP, FP with 2 ground truths: recall reaches 1 at precision 1 -> AP 1
    assert average_precision(np.array([1, 1, 0], bool), np.array([0.9, 0.8, 0.7]), 2) == pytest.approx(1.0)
    # TP, FP, FP: recall 0.5 at precision 1, never more -> 51 of 101 recall points score 1
    assert average_precision(np.array([1, 0, 0], bool), np.array([0.9, 0.8, 0.7]), 2) == pytest.approx(
        51 / 101
    )
    # FP first, then TP: precision 0.5 up to recall 1 (1 gt) -> 0.5
    assert average_precision(np.array([0, 1], bool), np.array([0.9, 0.8]), 1) == pytest.approx(0.5)
    assert average_precision(np.zeros(0, bool), np.zeros(0), 3) == 0.0


def test_detection_map_by_hand():
    gts = [
        _boxes([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0]),
        _boxes([[0, 0, 10, 10]], [1]),
    ]
    preds = [
        # exact hit, a hit of IoU 100/120 = 0.833, a false positive; and a class-1 box in the wrong image
        _boxes(
            [[0, 0, 10, 10], [20, 20, 30, 32], [50, 50, 60, 60], [0, 0, 10, 10]],
            [0, 0, 0, 1],
            [0.9, 0.8, 0.7, 0.6],
        ),
        _boxes([], [], []),
    ]
    m = detection_map(preds, gts, {0: "a", 1: "b"})
    # class 0: AP 1 at IoU 0.50..0.80 (7 thresholds), 51/101 at 0.85, 0.90, 0.95
    ap0 = (7 * 1.0 + 3 * 51 / 101) / 10
    # class 1: its only prediction sits in image 0, where there is no class-1 object -> AP 0
    assert m["per_class"]["a"]["AP50"] == pytest.approx(1.0)
    assert m["per_class"]["a"]["AP50-95"] == pytest.approx(ap0, abs=1e-4)
    assert m["per_class"]["b"]["AP50-95"] == 0.0
    assert m["mAP50"] == pytest.approx(0.5)
    assert m["mAP50-95"] == pytest.approx(ap0 / 2)
    assert m["instances"] == 3 and m["images"] == 2


def test_duplicates_are_false_positives_and_perfect_is_one():
    gt = [_boxes([[0, 0, 10, 10]], [0])]
    dup = [_boxes([[0, 0, 10, 10], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])]
    assert detection_map(dup, gt)["mAP50-95"] == pytest.approx(1.0)  # the duplicate comes after recall 1
    low_first = [_boxes([[0, 0, 10, 10], [30, 30, 40, 40]], [0, 0], [0.5, 0.9])]
    assert detection_map(low_first, gt)["mAP50"] == pytest.approx(0.5)


def test_agrees_with_ultralytics_ap_on_random_case():
    """Same curve through ultralytics' own ap_per_class: close (its interpolation differs slightly)."""
    from ultralytics.utils.metrics import ap_per_class

    rng = np.random.default_rng(0)
    tp = rng.random(200) < 0.6
    conf = rng.random(200)
    ours = average_precision(tp, conf, 150)
    theirs = ap_per_class(tp[:, None].astype(float), conf, np.zeros(200), np.zeros(150))[5][0, 0]
    assert ours == pytest.approx(float(theirs), abs=0.02)
