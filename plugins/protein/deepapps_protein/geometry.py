"""Cα-trace geometry: chain building from virtual angles, the three baselines, and distance geometry.

A Cα trace is fixed by its virtual bonds (3.8 Å), bond angles θ (at residue i between i-1 and i+1)
and dihedrals τ (over i-1, i, i+1, i+2). Ideal values (Cα-only, from the literature on Cα models):
α-helix θ 91°, τ +50°; β-strand θ 120°, τ -170°.

Baselines (each deterministic given its seed):
- ``ideal_helix``: the whole chain as one ideal α-helix.
- ``random_walk``: 3.8 Å steps in uniformly random directions (not self-avoiding).
- ``fragment_build``: helix and strand geometry where the secondary structure says so, and coil
  residues with θ 110° and a dihedral drawn from a broad coil distribution.

The structure step of the bundled model is distance geometry: classical multidimensional scaling of
the predicted distance matrix, the mirror image chosen so that predicted helices are right-handed,
then gradient refinement against the distances, the 3.8 Å bonds, clashes, and helix/strand geometry.
"""

from __future__ import annotations

import zlib

import numpy as np

BOND = 3.8
HELIX_ANGLES = (np.deg2rad(91.0), np.deg2rad(50.0))
STRAND_ANGLES = (np.deg2rad(120.0), np.deg2rad(-170.0))
COIL_THETA = np.deg2rad(110.0)


def chain_seed(seed: int, name: str) -> int:
    """A per-chain seed that does not depend on the order chains are visited in."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % 2**32


def build_from_angles(theta: np.ndarray, tau: np.ndarray, bond: float = BOND) -> np.ndarray:
    """Cα coordinates (L x 3) from bond angles θ_i (i = 1..L-2) and dihedrals τ_i (i = 1..L-3)
    by placing each atom from the previous three (natural extension reference frame)."""
    length = len(theta)
    xyz = np.zeros((length, 3))
    if length > 1:
        xyz[1] = [bond, 0.0, 0.0]
    if length > 2:
        t = theta[1]
        xyz[2] = xyz[1] + bond * np.array([-np.cos(t), np.sin(t), 0.0])
    for i in range(3, length):
        a, b, c = xyz[i - 3], xyz[i - 2], xyz[i - 1]
        bc = (c - b) / np.linalg.norm(c - b)
        n = np.cross(b - a, bc)
        n /= np.linalg.norm(n)
        m = np.stack([bc, np.cross(n, bc), n], axis=1)
        t, d = theta[i - 1], tau[i - 2]
        local = bond * np.array([-np.cos(t), np.sin(t) * np.cos(d), np.sin(t) * np.sin(d)])
        xyz[i] = c + m @ local
    return xyz


def ideal_helix(length: int) -> np.ndarray:
    return build_from_angles(np.full(length, HELIX_ANGLES[0]), np.full(length, HELIX_ANGLES[1]))


def random_walk(length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(length - 1, 3))
    steps *= BOND / np.linalg.norm(steps, axis=1, keepdims=True)
    return np.vstack([np.zeros((1, 3)), np.cumsum(steps, axis=0)])


def fragment_build(ss: str, seed: int = 0) -> np.ndarray:
    """Ideal helix/strand fragments where ``ss`` has H/E, random coil geometry elsewhere."""
    rng = np.random.default_rng(seed)
    length = len(ss)
    theta = np.full(length, COIL_THETA)
    tau = rng.choice(np.deg2rad([-170.0, -120.0, -80.0, 60.0, 100.0]), size=length) + rng.normal(
        0, 0.3, length
    )
    for i, state in enumerate(ss):
        if state == "H":
            theta[i], tau[i] = HELIX_ANGLES
        elif state == "E":
            theta[i], tau[i] = STRAND_ANGLES
    return build_from_angles(theta, tau)


def pseudo_dihedrals(ca: np.ndarray) -> np.ndarray:
    """τ_i over Cα i, i+1, i+2, i+3 (L-3 values, radians)."""
    b0 = ca[1:-2] - ca[:-3]
    b1 = ca[2:-1] - ca[1:-2]
    b2 = ca[3:] - ca[2:-1]
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    m1 = np.cross(n1, b1 / np.linalg.norm(b1, axis=1, keepdims=True))
    # sign chosen so that a right-handed α-helix gives about +50°
    return -np.arctan2((m1 * n2).sum(1), (n1 * n2).sum(1))


def classical_mds(dist: np.ndarray, dims: int = 3) -> np.ndarray:
    """Coordinates whose distances best match ``dist`` (Torgerson scaling of the Gram matrix)."""
    d2 = np.asarray(dist, dtype=np.float64) ** 2
    n = len(d2)
    centre = np.eye(n) - np.ones((n, n)) / n
    gram = -0.5 * centre @ d2 @ centre
    vals, vecs = np.linalg.eigh(gram)
    order = np.argsort(vals)[::-1][:dims]
    return vecs[:, order] * np.sqrt(np.clip(vals[order], 1e-6, None))


def right_handed(ca: np.ndarray, helix_prob: np.ndarray) -> np.ndarray:
    """Mirror ``ca`` if the residues predicted helical have mostly left-handed dihedrals."""
    if len(ca) < 4:
        return ca
    tau = pseudo_dihedrals(ca)
    weight = helix_prob[1:-2] if len(helix_prob) == len(ca) else np.ones(len(tau))
    score = float((weight * np.sin(tau)).sum())
    return ca * np.array([-1.0, 1.0, 1.0]) if score < 0 else ca
