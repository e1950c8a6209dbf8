"""The bundled model's confidence head: per-residue signals -> a pLDDT-like score (numpy only).

Signals, all available at inference (no reference structure):

- ``expected_lddt``: the lDDT-Cα the folded structure would get if the true distances were drawn
  from the predicted distogram softened with CONFIDENCE_TEMPERATURE: for each pair likely within 15 Å, the
  probability that the true distance lies within 0.5 / 1 / 2 / 4 Å of the folded one (uniform
  mass within each distance bin), averaged over the thresholds and the pairs.
- ``nonlocal_neighbours``: how many residues at least 6 apart in sequence the folded structure
  puts within 15 Å (÷10).
- ``violation``: mean |d - target| (Å) over the residue's pairs, weighted by the restraint weights
  of the structure step, i.e. how badly the fold satisfies the predicted distances around it
  (reported; not an input of the bundled head, see ``FEATURES``).
- and, kept for older checkpoints: ``ss_confidence``, ``distogram_sharpness``, ``contacts``,
  ``terminus``.

Calibration (fitted on the validation chains only, see train.calibrate_confidence): a least-squares
line from the checkpoint's features to the true per-residue lDDT-Cα, then an isotonic
(monotone non-decreasing) map of that line's output to lDDT, stored as knots.
"""

from __future__ import annotations

import numpy as np

from .features import CONTACT_BINS, DIST_EDGES

# the bundled head's inputs. ``violation`` is left out: on the val chains its least-squares weight came
# out positive (more violation, more confidence) once expected_lddt, which already measures how well
# the fold keeps the predicted distances, was in; without it the leave-one-chain-out r is the same
FEATURES = ("bias", "expected_lddt", "nonlocal_neighbours")
LEGACY_FEATURES = ("bias", "ss_confidence", "distogram_sharpness", "contacts", "violation", "terminus")
LDDT_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)
LDDT_RADIUS = 15.0
NONLOCAL = 6  # sequence separation from which a pair counts as non-local
# expected_lddt reads the distogram softened further than the structure step's (fold.DISTOGRAM_TEMPERATURE):
# chosen on the 6 val chains (T = 1 / 2 / 3 / 4: Pearson r with lDDT-Ca 0.15 / 0.17 / 0.28 / 0.32)
CONFIDENCE_TEMPERATURE = 4.0
# lower and upper edge (Å) of each distance bin; the open last bin is taken as 20-26 Å
_LO = np.concatenate([[2.0], DIST_EDGES])
_HI = np.concatenate([DIST_EDGES, [26.0]])


def soften(dist_probs: np.ndarray, temperature: float) -> np.ndarray:
    """Distogram probabilities raised to 1/temperature and renormalised (> 1: flatter)."""
    if temperature == 1.0:
        return dist_probs
    logits = np.log(np.clip(dist_probs, 1e-12, None)) / temperature
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def mass_between(dist_probs: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """P(low < D < high) per pair, D distributed as the distogram, uniformly within each bin."""
    a = np.clip(low[..., None], _LO, _HI)
    b = np.clip(high[..., None], _LO, _HI)
    return (dist_probs * (b - a) / (_HI - _LO)).sum(-1)


def expected_lddt(ca: np.ndarray, dist_probs: np.ndarray) -> np.ndarray:
    """Per-residue lDDT-Cα of ``ca`` expected under the distogram (see the module docstring)."""
    d = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    near = mass_between(dist_probs, np.zeros_like(d), np.full_like(d, LDDT_RADIUS))
    np.fill_diagonal(near, 0.0)
    kept = np.mean([mass_between(dist_probs, d - t, d + t) for t in LDDT_THRESHOLDS], axis=0)
    return (near * kept).sum(1) / np.maximum(near.sum(1), 1e-9)


def residue_signals(
    ca: np.ndarray,
    ss_probs: np.ndarray,
    dist_probs: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every per-residue signal by name (``FEATURES`` and ``LEGACY_FEATURES``); ``dist_probs`` is the
    network's distogram, ``target`` and ``weight`` the structure step's restraints."""
    length = len(ca)
    pos = np.arange(length)
    sep = np.abs(pos[:, None] - pos[None])
    nonlocal_pairs = sep >= NONLOCAL
    n_nonlocal = np.maximum(nonlocal_pairs.sum(1), 1)
    d = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    return {
        "bias": np.ones(length),
        "expected_lddt": expected_lddt(ca, soften(dist_probs, CONFIDENCE_TEMPERATURE)),
        "nonlocal_neighbours": ((d < LDDT_RADIUS) & nonlocal_pairs).sum(1) / 10.0,
        "violation": (np.abs(d - target) * weight).sum(1) / np.maximum(weight.sum(1), 1e-9),
        "ss_confidence": ss_probs.max(1),
        "distogram_sharpness": (dist_probs.max(-1) * nonlocal_pairs).sum(1) / n_nonlocal,
        "contacts": (dist_probs[..., :CONTACT_BINS].sum(-1) * nonlocal_pairs).sum(1) / 10.0,
        "terminus": np.exp(-np.minimum(pos, length - 1 - pos) / 5.0),
    }


def feature_matrix(signals: dict[str, np.ndarray], names: tuple[str, ...] | list[str]) -> np.ndarray:
    """L x len(names) matrix of the named signals, in that order."""
    return np.stack([signals[n] for n in names], axis=1)


def isotonic_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators: the non-decreasing step function of x closest to y (least squares),
    returned as knots (block mean of x, block mean of y) for ``np.interp``."""
    order = np.argsort(x, kind="stable")
    xs, ys = np.asarray(x, float)[order], np.asarray(y, float)[order]
    blocks: list[list[float]] = []  # [sum_x, sum_y, count]
    for xi, yi in zip(xs, ys, strict=True):
        blocks.append([xi, yi, 1.0])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            last = blocks.pop()
            blocks[-1] = [blocks[-1][k] + last[k] for k in range(3)]
    knots_x = np.array([b[0] / b[2] for b in blocks])
    knots_y = np.array([b[1] / b[2] for b in blocks])
    return knots_x, knots_y


def fit_calibration(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares weights of the features ``x`` (N x F) for ``y`` (N), and the isotonic knots."""
    weights, *_ = np.linalg.lstsq(x, y, rcond=None)
    knots_x, knots_y = isotonic_fit(x @ weights, y)
    return weights, knots_x, knots_y


def apply_calibration(
    x: np.ndarray, weights: np.ndarray, knots_x: np.ndarray | None = None, knots_y: np.ndarray | None = None
) -> np.ndarray:
    """pLDDT-like score in 0-100: the linear map, then the isotonic knots when there are any."""
    raw = x @ weights
    if knots_x is not None and len(knots_x) > 0:
        raw = np.interp(raw, knots_x, knots_y)
    return np.clip(raw, 0.0, 1.0) * 100.0
