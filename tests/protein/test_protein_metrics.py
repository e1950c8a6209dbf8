"""Structure metrics: identities, invariance under rigid motion, and a pinned real pair checked against tmtools."""

from __future__ import annotations

import numpy as np
import pytest

from deepapps_protein import metrics as M
from deepapps_protein.data import data_dir
from deepapps_protein.structure_io import read_structure


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.fixture(scope="module")
def adk():
    folder = data_dir()
    return read_structure(folder / "adk_open.pdb"), read_structure(folder / "adk_closed.pdb")


def test_a_structure_against_itself_and_a_moved_copy_scores_perfectly(adk):
    ca = adk[0].ca
    moved = ca @ _rotation(3).T + np.array([12.0, -40.0, 7.5])
    for other in (ca, moved):
        assert M.tm_score(other, ca) == pytest.approx(1.0, abs=1e-9)
        assert M.rmsd(other, ca) == pytest.approx(0.0, abs=1e-6)
        assert M.lddt_ca(other, ca) == pytest.approx(1.0)
        assert M.gdt_ts(other, ca) == pytest.approx(1.0)
        assert np.allclose(M.lddt_per_residue(other, ca), 1.0)


def test_kabsch_never_reflects():
    ca = np.random.default_rng(0).normal(size=(30, 3)) * 8
    mirror = ca * np.array([-1.0, 1.0, 1.0])
    rot, _ = M.kabsch(mirror, ca)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    assert M.rmsd(mirror, ca) > 1.0  # a mirror image cannot be superposed
    assert M.lddt_ca(mirror, ca) == pytest.approx(1.0)  # but lDDT sees only distances


def test_adk_open_vs_closed_is_pinned_and_agrees_with_tmtools(adk):
    open_, closed = adk
    assert len(open_) == len(closed) == 214 and open_.sequence == closed.sequence
    tm = M.tm_score(open_.ca, closed.ca)
    assert tm == pytest.approx(0.6898, abs=1e-3)
    assert M.rmsd(open_.ca, closed.ca) == pytest.approx(6.909, abs=1e-2)
    assert M.lddt_ca(open_.ca, closed.ca) == pytest.approx(0.7543, abs=1e-3)
    assert M.gdt_ts(open_.ca, closed.ca) == pytest.approx(0.5759, abs=1e-3)
    ref = M.tm_align(open_.ca, closed.ca, open_.sequence, closed.sequence)
    assert ref["tm_align"] == pytest.approx(0.6882, abs=1e-3)
    # same sequence, so TM-align's alignment is (nearly) the identity one: the scores agree closely
    assert abs(tm - ref["tm_align"]) < 0.01


def test_tm_score_of_unrelated_shapes_is_low_and_lengths_must_match():
    rng = np.random.default_rng(1)
    a = np.cumsum(rng.normal(size=(100, 3)), axis=0) * 2
    b = np.cumsum(rng.normal(size=(100, 3)), axis=0) * 2
    assert M.tm_score(a, b) < 0.3
    with pytest.raises(ValueError):
        M.tm_score(a, b[:50])


def test_q3_and_three_state_mapping():
    assert M.q3("HHHEEE---", "HHHEEE---") == 1.0
    assert M.q3("HHHHHHHHH", "HHHEEE---") == pytest.approx(1 / 3)
    assert M.to_three_state("HGIEBTS -") == "HHHEE----"
    with pytest.raises(ValueError):
        M.q3("HH", "HHH")


def test_contact_precision_counts_the_top_long_range_pairs():
    # a hairpin: residues i and 59-i meet, so long-range contacts exist
    t = np.arange(30)
    arm1 = np.stack([t * 3.8, np.zeros(30), np.zeros(30)], 1)
    arm2 = np.stack([t[::-1] * 3.8, np.full(30, 5.0), np.zeros(30)], 1)
    ref = np.vstack([arm1, arm2])
    truth = -np.linalg.norm(ref[:, None] - ref[None], axis=-1)
    assert M.contact_precision(truth, ref) == 1.0
    anti = -truth  # ranks the farthest pairs first
    assert M.contact_precision(anti, ref) == 0.0
    assert np.isnan(M.contact_precision(truth[:10, :10], ref[:10]))  # no pair 24 apart
