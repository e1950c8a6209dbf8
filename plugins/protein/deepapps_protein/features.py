"""Per-residue input features and training targets (numpy only).

Features: one-hot residue type (20 + X), five published amino-acid scales (Kyte-Doolittle
hydropathy; Chou-Fasman helix, strand and turn propensities; side-chain volume), net charge at
pH 7, and two terminus markers. No evolutionary information: single sequence only.
"""

from __future__ import annotations

import numpy as np

from .sequences import ALPHABET, AMINO_ACIDS

SS_STATES = "HE-"  # helix, strand, coil: class indices 0, 1, 2
# Cα-Cα distance bins (Å): below 4, 4-5, ..., 7-8, 8-10, ..., 18-20, 20 and above
DIST_EDGES = np.array([4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0])
DIST_CENTRES = np.array([3.8, 4.5, 5.5, 6.5, 7.5, 9.0, 11.0, 13.0, 15.0, 17.0, 19.0, 23.0])
N_BINS = len(DIST_CENTRES)
CONTACT_BINS = int(np.searchsorted(DIST_EDGES, 8.0)) + 1  # bins wholly below 8 Å
MIN_PAIR_SEPARATION = 2  # |i-j| = 1 is a 3.8 Å bond: nothing to learn

#                   hydropathy  P(helix)  P(strand)  P(turn)  volume
_SCALES = {
    "A": (1.8, 142, 83, 66, 88.6),
    "R": (-4.5, 98, 93, 95, 173.4),
    "N": (-3.5, 67, 89, 156, 114.1),
    "D": (-3.5, 101, 54, 146, 111.1),
    "C": (2.5, 70, 119, 119, 108.5),
    "Q": (-3.5, 111, 110, 98, 143.8),
    "E": (-3.5, 151, 37, 74, 138.4),
    "G": (-0.4, 57, 75, 156, 60.1),
    "H": (-3.2, 100, 87, 95, 153.2),
    "I": (4.5, 108, 160, 47, 166.7),
    "L": (3.8, 121, 130, 59, 166.7),
    "K": (-3.9, 114, 74, 101, 168.6),
    "M": (1.9, 145, 105, 60, 162.9),
    "F": (2.8, 113, 138, 60, 189.9),
    "P": (-1.6, 57, 55, 152, 112.7),
    "S": (-0.8, 77, 75, 143, 89.0),
    "T": (-0.7, 83, 119, 96, 116.1),
    "W": (-0.9, 108, 137, 96, 227.8),
    "Y": (-1.3, 69, 147, 114, 193.6),
    "V": (4.2, 106, 170, 50, 140.0),
}
_CHARGE = {"D": -1.0, "E": -1.0, "K": 1.0, "R": 1.0, "H": 0.1}


def _scale_table() -> np.ndarray:
    raw = np.array([_SCALES[a] for a in AMINO_ACIDS], dtype=np.float64)
    z = (raw - raw.mean(0)) / raw.std(0)
    return np.vstack([z, np.zeros((1, z.shape[1]))])  # X: the average residue


SCALES = _scale_table()
N_FEATURES = len(ALPHABET) + SCALES.shape[1] + 1 + 2


def residue_features(sequence: str) -> np.ndarray:
    """L x N_FEATURES float32 matrix for a checked sequence."""
    idx = np.array([ALPHABET.index(c) for c in sequence])
    length = len(sequence)
    onehot = np.eye(len(ALPHABET))[idx]
    charge = np.array([[_CHARGE.get(c, 0.0)] for c in sequence])
    pos = np.arange(length)
    termini = np.stack([np.exp(-pos / 4.0), np.exp(-(length - 1 - pos) / 4.0)], axis=1)
    return np.hstack([onehot, SCALES[idx], charge, termini]).astype(np.float32)


def ss_targets(ss: str) -> np.ndarray:
    return np.array([SS_STATES.index(c) if c in "HE" else 2 for c in ss], dtype=np.int64)


def distance_bins(ca: np.ndarray) -> np.ndarray:
    dist = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    return np.searchsorted(DIST_EDGES, dist, side="right").astype(np.int64)


def expected_distance(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the distance under binned probabilities (... x N_BINS)."""
    mean = probs @ DIST_CENTRES
    var = probs @ (DIST_CENTRES**2) - mean**2
    return mean, np.sqrt(np.clip(var, 0.0, None))


def contact_probability(probs: np.ndarray) -> np.ndarray:
    """P(Cα-Cα < 8 Å) from binned probabilities."""
    return probs[..., :CONTACT_BINS].sum(-1)
