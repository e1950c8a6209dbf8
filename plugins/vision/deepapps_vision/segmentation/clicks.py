"""Click check: after a corrective click, keep the candidate mask that contradicts the fewest clicks.

SAM answers a corrective click (points plus the previous low-resolution logits as ``mask_input``) with
one mask, its decoder's first output. A network trained on few corrective rounds (the bundled model saw
one) does not always honour the clicks it is given: on scenes val renders, positive clicks on the edge
of an object sometimes made its mask *smaller*, and each next round drifted further (the object shrank
click after click). The decoder computes four masks for every prompt anyway (one for a single output,
three for multimask); the user's clicks say which of them is right where it matters.

``masks``: choose among the decoder's four outputs the one that contradicts the fewest clicks (a
positive click outside the mask, a negative one inside), every click the user made counted, also those
the decoder no longer gets (``max_points``); ties go to the highest predicted IoU.

``local``: also offer, for each output, the previous mask changed only in the connected region around the
new click where that output differs from it (FocalClick's idea that a click is a local correction). A
network output wins ties against these, so the local versions only count where every network output
breaks a click that the local change keeps. The runner knows the previous mask when ``mask_input`` is
logits it returned itself (the usual interactive loop); otherwise only the four outputs are compared.
"""

from __future__ import annotations

import numpy as np

from .specs import CLICK_CHECKS as MODES

LOCAL, MASKS, OFF = MODES


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"click check {mode!r} is unknown; use one of {', '.join(MODES)}")
    return mode


def _pixel(point: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int]:
    """Row and column of a pixel x, y point inside a mask of ``shape`` (H x W)."""
    return min(int(point[1]), shape[0] - 1), min(int(point[0]), shape[1] - 1)


def contradictions(mask: np.ndarray, points: np.ndarray, labels: np.ndarray) -> int:
    """How many clicks ``mask`` (H x W bool) contradicts: positive ones outside it, negative ones inside."""
    return sum(
        int(mask[_pixel(p, mask.shape)] != bool(label)) for p, label in zip(points, labels, strict=True)
    )


def local_version(mask: np.ndarray, previous: np.ndarray, point: np.ndarray) -> np.ndarray | None:
    """``previous`` with only the connected region around ``point`` where ``mask`` differs from it changed;
    None when ``mask`` does not change the clicked pixel."""
    from scipy import ndimage

    changed = mask ^ previous
    row, col = _pixel(point, mask.shape)
    if not changed[row, col]:
        return None
    regions, _ = ndimage.label(changed)
    return previous ^ (regions == regions[row, col])


def choose(
    masks: np.ndarray,
    scores: np.ndarray,
    logits: np.ndarray,
    points: np.ndarray,
    labels: np.ndarray,
    previous: np.ndarray | None,
    mode: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one candidate (1 x H x W mask, its score, its logits) of ``masks`` (N x H x W, with predicted IoUs
    ``scores`` and low-res ``logits``) that contradicts the fewest ``points``; the latest point is the new
    click. ``local``: also each mask's local version around it, against the ``previous`` mask (when known);
    a local version keeps the score and logits of the output it came from."""
    check_mode(mode)
    candidates = [(masks[i], i, 0) for i in range(len(masks))]  # (mask, output index, 1 when local)
    if mode == LOCAL and previous is not None and previous.shape == masks.shape[1:]:
        for i in range(len(masks)):
            local = local_version(masks[i], previous, points[-1])
            if local is not None:
                candidates.append((local, i, 1))
    best = min(candidates, key=lambda c: (contradictions(c[0], points, labels), c[2], -float(scores[c[1]])))
    mask, i, _ = best
    return mask[None], scores[i : i + 1], logits[i : i + 1]


__all__ = ["LOCAL", "MASKS", "MODES", "OFF", "check_mode", "choose", "contradictions", "local_version"]
