"""The PilotNet policy trains a few steps on expert frames and its imitation loss falls."""

from __future__ import annotations

import numpy as np

from deepapps.runtime.seeding import seed_everything
from deepapps_driving import catalog
from deepapps_driving.controllers import LaneKeepingExpert
from deepapps_driving.imitation import Dataset, collect, fit, training_seed
from deepapps_driving.policies import PilotNet


def test_imitation_loss_falls_and_the_net_steers():
    seed_everything(0)
    rng = np.random.default_rng(0)
    frames, labels, stats = collect(None, LaneKeepingExpert(), 1.0, [training_seed(0, 0, 0)], rng)
    assert len(frames) == 200 and stats[0]["variant"] == "v0"
    data = Dataset(cap=1000)
    data.add(frames[:120], labels[:120])
    net = PilotNet(width=0.25)
    losses, _ = fit(net, data, epochs=6, batch=32, lr=3e-3, rng=rng)
    assert losses[-1] < 0.5 * losses[0], losses
    import torch

    with torch.inference_mode():
        out = net(torch.as_tensor(np.stack(frames[:4]), dtype=torch.float32) / 255.0)
    assert out.shape == (4, 1) and float(out.abs().max()) <= 1.0


def test_dataset_drops_the_oldest_beyond_its_cap():
    data = Dataset(cap=3)
    data.add([np.zeros(1)] * 2, [1.0, 2.0])
    data.add([np.zeros(1)] * 2, [3.0, 4.0])
    assert data.labels == [2.0, 3.0, 4.0]


def test_training_seeds_stay_below_the_held_out_range():
    assert (
        max(training_seed(s, i, e) for s in (0, 999_999) for i in (0, 199) for e in (0, 999))
        < catalog.HELD_OUT_SEED_BASE
    )
