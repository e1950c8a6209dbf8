"""The expert and rule-based baselines keep their metrics on a few held-out seeds."""

from __future__ import annotations

import pytest

from deepapps import InputError
from deepapps_driving.catalog import HELD_OUT_SEED_BASE
from deepapps_driving.controllers import IDMCruise, LaneKeepingExpert, random_policy
from deepapps_driving.episode import run_episode

SEEDS = [HELD_OUT_SEED_BASE + i for i in range(2)]


def test_expert_keeps_the_narrow_lane_despite_noise_and_delay():
    for seed in SEEDS:
        m = run_episode("lane-keeping", LaneKeepingExpert(), "narrow", seed).metrics()
        assert m["departures"] == 0 and m["mean_abs_offset_m"] < 0.2 and m["max_abs_offset_m"] < 0.6
        assert m["share_within_0_5m"] == 1.0


def test_expert_scores_like_the_published_controller_on_v0():
    m = run_episode("lane-keeping", LaneKeepingExpert(), "v0", SEEDS[0]).metrics()
    assert m["return"] >= 195 and m["mean_abs_offset_m"] < 0.6


def test_random_steering_leaves_the_lane():
    m = run_episode(
        "lane-keeping", random_policy("lane-keeping"), "narrow", SEEDS[0], max_steps=100
    ).metrics()
    assert m["departures"] >= 1


def test_idm_follows_without_collision_at_its_time_gap():
    for seed in SEEDS:
        log = run_episode("adaptive-cruise", IDMCruise(), None, seed, max_steps=200)
        m = log.metrics()
        assert not m["collision"] and m["min_time_headway_s"] > 1.0 and m["jerk_rms"] < 1.5
        assert m["mean_speed_mps"] > 2.0


def test_expert_needs_the_info_dict():
    with pytest.raises(InputError, match="privileged"):
        LaneKeepingExpert().act(None)
