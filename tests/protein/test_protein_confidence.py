"""The confidence head: isotonic fit, calibration map, expected lDDT, the bundled head and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

import deepapps
from deepapps_protein import confidence as C
from deepapps_protein.features import distance_bins
from deepapps_protein.geometry import ideal_helix

BUNDLED = "plugins/protein/deepapps_protein/models/protein-fold-small.safetensors"


def test_isotonic_fit_pools_adjacent_violators():
    kx, ky = C.isotonic_fit(np.array([4.0, 1.0, 3.0, 2.0]), np.array([4.0, 1.0, 2.0, 3.0]))
    assert kx.tolist() == [1.0, 2.5, 4.0] and ky.tolist() == [1.0, 2.5, 4.0]
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    kx, ky = C.isotonic_fit(x, x + rng.normal(scale=0.5, size=200))
    assert np.all(np.diff(ky) > 0) and np.all(np.diff(kx) > 0)


def test_calibration_is_monotone_and_clipped_to_0_100():
    x = np.column_stack([np.ones(5), np.array([0.0, 0.1, 0.2, 0.3, 0.4])])
    weights, kx, ky = C.fit_calibration(x, np.array([0.1, 0.3, 0.2, 0.5, 0.6]))
    grid = np.column_stack([np.ones(50), np.linspace(-1, 2, 50)])
    out = C.apply_calibration(grid, weights, kx, ky)
    assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 100
    # the isotonic map pools 0.3 and 0.2 into 0.25 and ends at the highest block, 0.6
    assert out[0] == pytest.approx(10.0) and out[-1] == pytest.approx(60.0)
    assert C.apply_calibration(np.array([[1.0, 5.0]]), np.array([0.0, 1.0]))[0] == 100.0  # no knots: clip


def _sharp_distogram(ca: np.ndarray) -> np.ndarray:
    return np.eye(12)[distance_bins(ca)]


def test_expected_lddt_is_high_where_the_fold_keeps_the_predicted_distances():
    helix = ideal_helix(20)
    probs = _sharp_distogram(helix)
    exact = C.expected_lddt(helix, probs)
    assert exact.min() > 0.5
    moved = helix.copy()
    moved[10] += np.array([6.0, 0.0, 0.0])  # residue 11 violates its predicted distances
    score = C.expected_lddt(moved, probs)
    assert score[10] == pytest.approx(score.min()) and score[10] < exact[10] - 0.3
    assert np.allclose(np.delete(score, [9, 10, 11]), np.delete(exact, [9, 10, 11]), atol=0.15)


def test_the_bundled_head_gives_less_confidence_to_the_violating_residue():
    model = deepapps.load("structure-prediction", device="cpu").backend
    head = model.confidence
    assert head.names == C.FEATURES == ("bias", "expected_lddt", "nonlocal_neighbours")
    assert len(head.knots_x) == 26 and np.all(np.diff(head.knots_y) >= 0)
    assert head.weights[1] == pytest.approx(3.0415, abs=1e-3)  # expected_lddt, the main signal
    helix = ideal_helix(30)
    probs = 0.5 * _sharp_distogram(helix) + 0.5 / 12  # half sure of the helix's distances
    moved = helix.copy()
    moved[15] += np.array([6.0, 0.0, 0.0])  # residue 16 violates them
    dist = np.linalg.norm(moved[:, None] - moved[None], axis=-1)
    signals = C.residue_signals(moved, np.full((30, 3), 1 / 3), probs, dist, np.ones((30, 30)))
    plddt = head(signals)
    assert plddt[15] == pytest.approx(plddt.min()) and plddt[15] == pytest.approx(21.4, abs=0.1)
    assert plddt[14] == pytest.approx(37.2, abs=0.3) and plddt[16] == pytest.approx(37.7, abs=0.3)


def test_calibration_round_trips_through_a_checkpoint(tmp_path):
    from deepapps_protein.net import FoldNet
    from deepapps_protein.small_model import Calibration, load_model, save_model

    net = FoldNet({"channels": 8, "pair_channels": 4, "dilations_1d": [1], "dilations_2d": [1]})
    head = Calibration(np.array([0.1, 0.5, 0.01]), C.FEATURES, np.array([0.1, 0.4]), np.array([0.2, 0.6]))
    path = save_model(tmp_path / "m.safetensors", net, head, {"training": {}})
    back = load_model(path).confidence
    assert back.names == head.names and np.allclose(back.weights, head.weights)
    assert np.allclose(back.knots_x, head.knots_x) and np.allclose(back.knots_y, head.knots_y)
    with pytest.raises(deepapps.CheckpointError, match="3 confidence weights"):
        Calibration(np.zeros(3), C.LEGACY_FEATURES)


def test_the_structure_step_softens_the_distogram_and_reports_every_signal():
    from deepapps_protein import fold as F

    helix = ideal_helix(24)
    probs = _sharp_distogram(helix) * 0.9 + 0.1 / 12
    out = F.fold(np.tile([0.8, 0.1, 0.1], (24, 1)), probs, steps=50)
    assert set(out.signals) == set(C.FEATURES) | set(C.LEGACY_FEATURES)
    assert out.violation.shape == (24,) and np.all(out.signals["expected_lddt"] <= 1)
    flat = C.soften(probs, 2.0)
    assert np.allclose(flat.sum(-1), 1) and flat.max() < probs.max()
    assert C.soften(probs, 1.0) is probs
