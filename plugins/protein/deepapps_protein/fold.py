"""The structure step of the bundled model: predicted distances -> Cα coordinates.

1. Each pair's distance distribution gives a target (its mean) and a weight (1 / (1 + variance));
   pairs most likely 20 Å or more apart only get a lower bound.
2. Classical MDS of the target matrix gives a start; its mirror image is taken if the residues
   predicted helical come out left-handed.
3. Adam moves the coordinates to fit the targets, with 3.8 Å virtual bonds, no Cα closer than
   4 Å to another three residues away, and the handedness of ideal helices / strands (the signed
   volume of four consecutive Cα) where the secondary structure is predicted with confidence,
   and a one-sided compactness restraint pulling the radius of gyration down to that of a
   globule of the chain's length (2.2 L^0.38 Å) when it is larger: without it the uncertain
   long-range distances leave the chain about 10% too spread out (weight chosen on the val chains).
   The objective's gradient is analytic (numpy), so a 150-residue chain refines in well under a second.

The distogram is first softened (temperature DISTOGRAM_TEMPERATURE). It also returns the per-residue
signals the confidence head (confidence.py) maps to a pLDDT-like score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import DIST_CENTRES, N_BINS, expected_distance
from .geometry import BOND, HELIX_ANGLES, STRAND_ANGLES, build_from_angles, classical_mds, right_handed

REFINE_STEPS = 300
FAR = 20.0
CHIRALITY_WEIGHT, CHIRALITY_SCALE = 5.0, 10.0  # weight of the helix/strand handedness term; volume unit (Å^3)
MIN_HELIX_FOR_HANDEDNESS = 12.0  # expected helical residues needed to trust the helix-handedness test
MIRROR = np.array([-1.0, 1.0, 1.0])
# one-sided radius-of-gyration restraint: globular chains have Rg ~ 2.2 L^0.38 Å (Skolnick et al.)
RG_WEIGHT, RG_PREFACTOR, RG_EXPONENT = 10.0, 2.2, 0.38
# the distogram is softened (probabilities ** (1/T), renormalised) before it becomes restraints:
# chosen on the 6 val chains (T = 1 / 1.5 / 2 / 3 / 5: TM-score 0.200 / 0.207 / 0.209 / 0.198 /
# 0.196, lDDT-Ca 0.286 / 0.299 / 0.317 / 0.337 / 0.351; best TM kept); the network is
# overconfident far from the diagonal. The confidence signals read the network's own distogram.
DISTOGRAM_TEMPERATURE = 2.0


@dataclass
class FoldOutput:
    ca: np.ndarray  # L x 3
    signals: dict  # per-residue confidence signals by name (confidence.residue_signals)

    @property
    def violation(self) -> np.ndarray:
        """Per-residue mean |d - target| (Å) over its pairs, weighted by the restraint weights."""
        return self.signals["violation"]


def restraints(dist_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target distance, weight, lower-bound mask) for every pair."""
    mean, std = expected_distance(dist_probs)
    far = dist_probs[..., N_BINS - 1] > 0.5
    length = len(mean)
    sep = np.abs(np.arange(length)[:, None] - np.arange(length)[None])
    weight = np.where(sep >= 2, 1.0 / (1.0 + std**2), 0.0)
    return mean, weight, far & (sep >= 2)


def initial_coordinates(target: np.ndarray, helix_prob: np.ndarray) -> np.ndarray:
    filled = target.copy()
    np.fill_diagonal(filled, 0.0)
    return right_handed(classical_mds(filled), helix_prob)


def _chirality_targets() -> tuple[float, float]:
    """Signed volume of four consecutive Cα in an ideal helix and an ideal strand (Å^3)."""
    helix = build_from_angles(np.full(4, HELIX_ANGLES[0]), np.full(4, HELIX_ANGLES[1]))
    strand = build_from_angles(np.full(4, STRAND_ANGLES[0]), np.full(4, STRAND_ANGLES[1]))
    return float(_volumes(helix)[0][0]), float(_volumes(strand)[0][0])


def _volumes(x: np.ndarray):
    """Signed volumes V_i = ((x1-x0) x (x2-x0)) . (x3-x0) of each window of four, and the vectors."""
    a, b, c = x[1:-2] - x[:-3], x[2:-1] - x[:-3], x[3:] - x[:-3]
    return np.einsum("ij,ij->i", np.cross(a, b), c), (a, b, c)


def _pair_gradient(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient of a sum over unordered pairs of f(d_ij), given the symmetric G_ij = f'(d_ij) / d_ij."""
    return g.sum(1)[:, None] * x - g @ x


class _Restraints:
    """The refinement objective and its analytic gradient (numpy: fast for a few hundred residues)."""

    def __init__(self, target, weight, far, ss_probs) -> None:
        length = len(target)
        sep = np.abs(np.arange(length)[:, None] - np.arange(length)[None])
        self.t = target
        self.w = np.where(far, 0.0, weight)
        self.w_sum = max(self.w.sum(), 1e-9)
        self.lower = far.astype(np.float64)
        self.n_lower = max(self.lower.sum(), 1.0)
        self.bond = (sep == 1).astype(np.float64)
        self.clash = (sep >= 3).astype(np.float64)
        self.length = length
        probs = np.asarray(ss_probs, dtype=np.float64)
        windows = (
            np.stack([probs[k : length - 3 + k] for k in range(4)]) if length >= 4 else np.zeros((4, 0, 3))
        )
        self.p_helix, self.p_strand = windows[..., 0].min(0), windows[..., 1].min(0)
        self.v_helix, self.v_strand = _chirality_targets()

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        diff = x[:, None] - x[None]
        d = np.sqrt((diff**2).sum(-1)) + np.eye(self.length)
        gap = d - self.t
        short = np.maximum(FAR - d, 0.0)
        bump = np.maximum(4.0 - d, 0.0)
        n_bonds = max(self.length - 1, 1)
        loss = (
            (self.w * gap**2).sum() / self.w_sum
            + 0.5 * (self.lower * short**2).sum() / self.n_lower
            + 10.0 * (self.bond * (d - BOND) ** 2).sum() / 2 / n_bonds
            + 5.0 * (self.clash * bump**2).sum() / 2 / self.length
        )
        # each term is a sum over ordered pairs (i, j) and (j, i): G holds f'(d)/d for one ordering
        g = (
            2 * 2 * self.w * gap / self.w_sum
            - 0.5 * 2 * 2 * self.lower * short / self.n_lower
            + 10.0 * 2 * self.bond * (d - BOND) / n_bonds
            - 5.0 * 2 * self.clash * bump / self.length
        ) / d
        grad = _pair_gradient(x, g)
        if self.length >= 4:
            loss_v, grad_v = self._chirality(x)
            loss, grad = loss + loss_v, grad + grad_v
        if RG_WEIGHT > 0:
            loss_r, grad_r = self._compactness(x)
            loss, grad = loss + loss_r, grad + grad_r
        return float(loss), grad

    def _compactness(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """RG_WEIGHT * (Rg - Rg0)^2 where the chain is larger than a globule of its length."""
        centred = x - x.mean(0)
        rg = np.sqrt((centred**2).sum(1).mean())
        excess = max(rg - RG_PREFACTOR * self.length**RG_EXPONENT, 0.0)
        if excess == 0.0:
            return 0.0, np.zeros_like(x)
        return RG_WEIGHT * excess**2, 2 * RG_WEIGHT * excess * centred / (self.length * rg)

    def _chirality(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        vol, (a, b, c) = _volumes(x)
        scale = CHIRALITY_WEIGHT / (len(vol) * CHIRALITY_SCALE**2)
        dh, de = vol - self.v_helix, vol - self.v_strand
        loss = scale * (self.p_helix * dh**2 + self.p_strand * de**2).sum()
        coef = (2 * scale * (self.p_helix * dh + self.p_strand * de))[:, None]
        g1, g2, g3 = coef * np.cross(b, c), coef * np.cross(c, a), coef * np.cross(a, b)
        grad = np.zeros_like(x)
        grad[1:-2] += g1
        grad[2:-1] += g2
        grad[3:] += g3
        grad[:-3] -= g1 + g2 + g3
        return float(loss), grad


def refine(
    start: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
    far: np.ndarray,
    ss_probs: np.ndarray,
    steps: int = REFINE_STEPS,
) -> tuple[np.ndarray, float]:
    """Adam on the coordinates against :class:`_Restraints` (see the module docstring); deterministic.
    Returns the coordinates and the final loss."""
    objective = _Restraints(target, weight, far, ss_probs)
    x = np.array(start, dtype=np.float64)
    m, v = np.zeros_like(x), np.zeros_like(x)
    beta1, beta2 = 0.9, 0.999
    loss = float("inf")
    for step in range(1, steps + 1):
        lr = 0.5 if step <= steps // 2 else 0.1
        loss, grad = objective(x)
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        x -= lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
    return x, objective(x)[0] if steps else loss


def fold(
    ss_probs: np.ndarray,
    dist_probs: np.ndarray,
    steps: int = REFINE_STEPS,
    temperature: float = DISTOGRAM_TEMPERATURE,
) -> FoldOutput:
    """Cα coordinates from the network's SS probabilities (L x 3) and distance bins (L x L x B)."""
    from .confidence import residue_signals, soften

    if dist_probs.shape[-1] != len(DIST_CENTRES):
        raise ValueError(f"expected {len(DIST_CENTRES)} distance bins, got {dist_probs.shape[-1]}")
    raw_probs, dist_probs = dist_probs, soften(dist_probs, temperature)
    target, weight, far = restraints(dist_probs)
    start = initial_coordinates(target, ss_probs[:, 0])
    ca = start
    if steps > 0:
        ca, loss = refine(start, target, weight, far, ss_probs, steps=steps)
        if ss_probs[:, 0].sum() < MIN_HELIX_FOR_HANDEDNESS:  # too little helix to tell: try the mirror too
            mirror, mirror_loss = refine(start * MIRROR, target, weight, far, ss_probs, steps=steps)
            if mirror_loss < loss:
                ca = mirror
    return FoldOutput(ca=ca, signals=residue_signals(ca, ss_probs, raw_probs, target, weight))
