"""Extra training chains from other packages' PDB files: real, labelled, and unrelated to pdb-chains."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from deepapps_protein import extra_chains as X
from deepapps_protein import splits as S
from deepapps_protein.data import load_chain, split_ids
from deepapps_protein.train import _chains


@pytest.fixture(scope="module")
def table():
    return json.loads(gzip.decompress(X.EXTRA_FILE.read_bytes()))


def test_extra_chains_are_labelled_real_backbones(table):
    chains = X.load_extra_chains()
    assert len(chains) == len(table["chains"]) >= 40
    assert table["residues"] == sum(len(c) for c in chains)
    for c in chains:
        assert X.MIN_SEGMENT <= len(c) <= X.MAX_SEGMENT
        assert len(c.ss) == len(c.sequence) == len(c.ca) and set(c.ss) <= set("HE-")
        steps = np.linalg.norm(np.diff(c.ca, axis=0), axis=1)
        assert steps.max() <= X.MAX_STEP + 0.02 and 3.7 < np.median(steps) < 3.9
    states = "".join(c.ss for c in chains)
    assert 0.2 < states.count("H") / len(states) < 0.6 and states.count("E") / len(states) > 0.1
    assert len({c.sequence for c in chains}) == len(chains)


def test_no_extra_chain_is_over_30_percent_identical_to_a_pdb_chain(table):
    rows = table["chains"]
    assert max(r["max_identity_to_pdb_chains"] for r in rows) <= S.IDENTITY_THRESHOLD
    assert all(d["identity"] > S.IDENTITY_THRESHOLD for d in table["dropped_as_relatives_of_pdb_chains"])
    # re-align a sample against every held-out chain of the main split
    held = [load_chain(i).sequence for i in split_ids("test") + split_ids("val")]
    for row in rows[:: max(1, len(rows) // 4)]:
        assert max(S.identity(row["sequence"], h) for h in held) <= S.IDENTITY_THRESHOLD


def test_extras_join_training_of_every_split_and_fold_never_the_held_out_side():
    extras = {c.id for c in X.load_extra_chains()}
    train, held, name = _chains(None, extra=True)
    assert name == "val" and extras <= {c.id for c in train} and not extras & {c.id for c in held}
    train, held, name = _chains(3, extra=True)
    assert name == "fold-3" and extras <= {c.id for c in train} and len(held) == 10
    train, _, _ = _chains(3, extra=False)
    assert len(train) == 40


def test_segments_split_at_chain_breaks():
    from deepapps_protein.data import data_dir

    rows = X._file_segments("t", "1hvr.pdb", (data_dir() / "1hvr.pdb").read_bytes())
    # 1hvr's chains have one break each: two segments of >= 40 residues would be kept, or one
    for r in rows:
        ca = np.asarray(r["ca"]).reshape(-1, 3) / 100
        assert np.linalg.norm(np.diff(ca, axis=0), axis=1).max() <= X.MAX_STEP + 0.02


def test_refinement_gradient_matches_finite_differences_with_the_compactness_term():
    from deepapps_protein import fold as F

    rng = np.random.default_rng(1)
    length = 12
    x = np.cumsum(rng.normal(size=(length, 3)) * 3.0, axis=0) * 2.0  # spread out: Rg above 2.2 L^0.38
    target = np.linalg.norm(x[:, None] - x[None], axis=-1) * 0.8
    weight = np.ones((length, length))
    far = np.zeros((length, length), dtype=bool)
    ss = np.full((length, 3), 1 / 3)
    objective = F._Restraints(target, weight, far, ss)
    loss, grad = objective(x)
    assert objective._compactness(x)[0] > 0
    eps = 1e-5
    for i, k in [(0, 0), (5, 1), (11, 2)]:
        step = np.zeros_like(x)
        step[i, k] = eps
        numeric = (objective(x + step)[0] - objective(x - step)[0]) / (2 * eps)
        assert numeric == pytest.approx(grad[i, k], rel=1e-4, abs=1e-6)
