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


def test_shield_changes_are_played_and_saved_with_the_same_weights(tmp_path, capsys):
    from safetensors.torch import load_file

    from deepapps import InputError
    from deepapps_driving.policies import load_policy
    from deepapps_driving.shield import ShieldSettings, parse_settings
    from deepapps_driving.tuning import main

    assert parse_settings(["ranked=false", "follower_margin=2.5"]) == {
        "ranked": False,
        "follower_margin": 2.5,
    }
    for bad, message in (
        ("ranked=maybe", "true or false"),
        ("margin=wide", "a number"),
        ("speed", "KEY=VALUE"),
    ):
        with pytest.raises(InputError, match=message):
            parse_settings([bad])
    out = tmp_path / "strict.safetensors"
    main(
        [
            "lane-change",
            str(MODEL),
            "--shield",
            "ranked=false",
            "--shield",
            "follower_margin=3",
            "--save-as",
            str(out),
        ]
    )
    assert capsys.readouterr().out.strip() == str(out)
    saved, bundled = load_policy(out, "lane-change"), load_policy(MODEL, "lane-change")
    assert saved.shield.settings == ShieldSettings(ranked=False, follower_margin=3.0)
    assert saved.arch["shield"] == saved.shield.describe() and saved.metadata["arch"] == saved.arch
    assert {k: v for k, v in saved.metadata.items() if k != "arch"} == {
        k: v for k, v in bundled.metadata.items() if k != "arch"
    }
    a, b = load_file(out), load_file(MODEL)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    with pytest.raises(InputError, match="one lane-change policy"):
        main(["lane-change", str(MODEL), str(MODEL), "--save-as", str(out)])
