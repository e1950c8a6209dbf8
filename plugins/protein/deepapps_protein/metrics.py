"""Structure metrics on residue-matched Cα coordinates (numpy), plus TM-align through tmtools.

- ``kabsch`` / ``rmsd``: optimal rotation and Cα RMSD after superposition (Kabsch 1976).
- ``tm_score``: TM-score of Zhang & Skolnick (2004), normalised by the reference length, with the
  TM-score program's search: superpositions seeded on fragments of length L, L/2, L/4 and 8,
  each refined on the residues within the search distance, the best score kept.
- ``gdt_ts``: mean over 1, 2, 4 and 8 Å of the largest fraction of residues within the cutoff
  under one superposition (the same seeded search, refined on the residues within the cutoff).
- ``lddt_ca``: lDDT on Cα atoms (Mariani et al. 2013): pairs within 15 Å in the reference, the
  fraction of their distances kept within 0.5, 1, 2 and 4 Å; superposition-free.
- ``q3``: fraction of residues with the right 3-state secondary structure (H, E, coil).
- ``contact_precision``: of the top L/5 predicted pairs at least 24 residues apart, the fraction
  whose reference Cα-Cα distance is under 8 Å (long-range contacts, CASP-style but on Cα).
- ``tm_align``: TM-align (tmtools), sequence-independent, normalised by the reference.
"""

from __future__ import annotations

import numpy as np

GDT_CUTOFFS = (1.0, 2.0, 4.0, 8.0)
LDDT_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)
LDDT_RADIUS = 15.0
CONTACT_DISTANCE = 8.0
LONG_RANGE = 24


def _check(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape or pred.ndim != 2 or pred.shape[1] != 3:
        raise ValueError(f"coordinates must be matching L x 3 arrays, got {pred.shape} and {ref.shape}")
    return pred, ref


def kabsch(mobile: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t minimising |mobile @ R.T + t - target| (no reflection)."""
    mc, tc = mobile.mean(0), target.mean(0)
    h = (mobile - mc).T @ (target - tc)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rot, tc - mc @ rot.T


def superpose(mobile: np.ndarray, target: np.ndarray, on: np.ndarray | None = None) -> np.ndarray:
    """``mobile`` moved onto ``target`` by the Kabsch fit of the residues ``on`` (all by default)."""
    idx = slice(None) if on is None else on
    rot, t = kabsch(mobile[idx], target[idx])
    return mobile @ rot.T + t


def rmsd(pred: np.ndarray, ref: np.ndarray) -> float:
    """Cα RMSD (Å) after optimal superposition of all residues."""
    pred, ref = _check(pred, ref)
    moved = superpose(pred, ref)
    return float(np.sqrt(((moved - ref) ** 2).sum(1).mean()))


def tm_d0(length: int) -> float:
    return max(1.24 * np.cbrt(max(length, 19) - 15) - 1.8, 0.5)


def _seeds(length: int) -> list[np.ndarray]:
    seeds = []
    for frag in sorted({length, max(length // 2, 4), max(length // 4, 4), min(8, length)}, reverse=True):
        step = max(frag // 2, 1)
        starts = list(range(0, length - frag + 1, step))
        if starts[-1] != length - frag:
            starts.append(length - frag)
        seeds += [np.arange(s, s + frag) for s in starts]
    return seeds


def _search(pred: np.ndarray, ref: np.ndarray, score, select, iterations: int = 20) -> float:
    """Best ``score(distances)`` over superpositions seeded on fragments and refined on ``select(d)``."""
    best = -np.inf
    for seed in _seeds(len(ref)):
        on = seed
        for _ in range(iterations):
            if len(on) < 3:
                break
            d = np.sqrt(((superpose(pred, ref, on) - ref) ** 2).sum(1))
            best = max(best, score(d))
            chosen = select(d)
            if len(chosen) < 3:
                chosen = np.argsort(d)[:3]
            if len(chosen) == len(on) and np.array_equal(np.sort(chosen), np.sort(on)):
                break
            on = chosen
    return float(best)


def tm_score(pred: np.ndarray, ref: np.ndarray) -> float:
    """Residue-matched TM-score in (0, 1], normalised by the reference length."""
    pred, ref = _check(pred, ref)
    d0 = tm_d0(len(ref))
    d_search = float(np.clip(d0, 4.5, 8.0))

    def score(d: np.ndarray) -> float:
        return float((1.0 / (1.0 + (d / d0) ** 2)).sum() / len(ref))

    return _search(pred, ref, score, lambda d: np.flatnonzero(d < d_search))


def gdt(pred: np.ndarray, ref: np.ndarray, cutoffs: tuple[float, ...] = GDT_CUTOFFS) -> dict[float, float]:
    """For each cutoff, the largest fraction of residues within it under one superposition."""
    pred, ref = _check(pred, ref)
    out = {}
    for c in cutoffs:
        out[c] = _search(
            pred, ref, lambda d, c=c: float((d <= c).mean()), lambda d, c=c: np.flatnonzero(d <= c)
        )
    return out


def gdt_ts(pred: np.ndarray, ref: np.ndarray) -> float:
    """GDT_TS in [0, 1] (CASP reports it x100)."""
    return float(np.mean(list(gdt(pred, ref).values())))


def lddt_per_residue(pred: np.ndarray, ref: np.ndarray, radius: float = LDDT_RADIUS) -> np.ndarray:
    """Per-residue lDDT-Cα in [0, 1] (a residue with no neighbour within ``radius`` gets 1)."""
    pred, ref = _check(pred, ref)
    dr = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
    dp = np.linalg.norm(pred[:, None] - pred[None], axis=-1)
    pairs = (dr < radius) & ~np.eye(len(ref), dtype=bool)
    err = np.abs(dr - dp)
    kept = np.mean([(err < t) for t in LDDT_THRESHOLDS], axis=0)
    n = pairs.sum(1)
    return np.where(n > 0, (kept * pairs).sum(1) / np.maximum(n, 1), 1.0)


def lddt_ca(pred: np.ndarray, ref: np.ndarray, radius: float = LDDT_RADIUS) -> float:
    """Global lDDT-Cα in [0, 1]: preserved fraction over all reference pairs within ``radius``."""
    pred, ref = _check(pred, ref)
    dr = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
    dp = np.linalg.norm(pred[:, None] - pred[None], axis=-1)
    pairs = (dr < radius) & ~np.eye(len(ref), dtype=bool)
    if not pairs.any():
        return 1.0
    err = np.abs(dr - dp)[pairs]
    return float(np.mean([(err < t).mean() for t in LDDT_THRESHOLDS]))


def q3(predicted: str, true: str) -> float:
    """Fraction of residues whose 3-state label (H, E, anything else = coil) matches."""
    if len(predicted) != len(true):
        raise ValueError(f"secondary structure strings differ in length: {len(predicted)} vs {len(true)}")
    a, b = to_three_state(predicted), to_three_state(true)
    return sum(x == y for x, y in zip(a, b, strict=True)) / max(len(b), 1)


def to_three_state(ss: str) -> str:
    """DSSP's 8 states (or any labels) to H, E and '-' (G, I -> H; B -> E; the rest coil)."""
    table = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E"}
    return "".join(table.get(c, "-") for c in ss)


def contact_precision(
    scores: np.ndarray,
    ref: np.ndarray,
    min_separation: int = LONG_RANGE,
    top: int | None = None,
    threshold: float = CONTACT_DISTANCE,
) -> float:
    """Precision of the ``top`` (default L/5) highest-scored pairs ``min_separation`` apart or more."""
    ref = np.asarray(ref, dtype=np.float64)
    length = len(ref)
    i, j = np.triu_indices(length, k=min_separation)
    if len(i) == 0:
        return float("nan")
    k = max(1, length // 5) if top is None else top
    order = np.argsort(-np.asarray(scores)[i, j], kind="stable")[:k]
    dist = np.linalg.norm(ref[i[order]] - ref[j[order]], axis=1)
    return float((dist < threshold).mean())


def contact_scores_from_coords(ca: np.ndarray) -> np.ndarray:
    """Contact scores of a structure with no predicted map (baselines): closer pairs score higher."""
    ca = np.asarray(ca, dtype=np.float64)
    return -np.linalg.norm(ca[:, None] - ca[None], axis=-1)


def tm_align(pred: np.ndarray, ref: np.ndarray, pred_seq: str, ref_seq: str) -> dict[str, float]:
    """TM-align (tmtools): sequence-independent alignment; TM normalised by the reference, and RMSD."""
    from tmtools import tm_align as _tm_align

    res = _tm_align(
        np.ascontiguousarray(pred, dtype=np.float64),
        np.ascontiguousarray(ref, dtype=np.float64),
        pred_seq,
        ref_seq,
    )
    return {"tm_align": float(res.tm_norm_chain2), "tm_align_rmsd": float(res.rmsd)}


def score_structure(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """TM-score, lDDT-Cα, RMSD and GDT_TS of residue-matched Cα coordinates."""
    return {
        "tm_score": tm_score(pred, ref),
        "lddt_ca": lddt_ca(pred, ref),
        "rmsd": rmsd(pred, ref),
        "gdt_ts": gdt_ts(pred, ref),
    }
