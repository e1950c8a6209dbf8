"""The model-choice script plays training-range seeds and reports eval's aggregate figures."""

from __future__ import annotations

from pathlib import Path

import pytest

MODEL = Path(__file__).parents[2] / "plugins/driving/deepapps_driving/models/lane-change-dqn.safetensors"


def test_tuning_figures_on_training_seeds():
    from deepapps import InputError
    from deepapps_driving.tuning import tuning_figures

    m = tuning_figures("lane-change", str(MODEL), episodes=2)
    assert m["episodes"] == 2 and 0 <= m["crash_rate"] <= 1 and 10 < m["mean_speed_mps"] < 31
    assert m["distance_km"] > 0.5
    with pytest.raises(InputError, match="episodes"):
        tuning_figures("lane-change", str(MODEL), episodes=0)
