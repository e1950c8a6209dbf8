"""Each deepapps/... environment steps in a plain gymnasium loop, with the observation its policies
expect and the privileged state in info["driving"]."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import deepapps_driving.envs  # noqa: F401  (registers the ids)
from deepapps_driving import catalog
from deepapps_driving.envs import ENVS

KEYS = {
    "lane-keeping": {"lateral_offset", "heading_error", "curvature", "speed", "lane_width", "steering"},
    "adaptive-cruise": {"speed", "gap", "lead_speed", "accel", "time_gap", "headway", "crashed"},
    "lane-change": {"speed", "lane", "x", "crashed"},
    "parking": {"success", "crashed", "speed"},
}
TASK_OF = {v.env_id: t for t, i in catalog.INFO.items() for v in i.variants}


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_env_steps_with_declared_observation(env_id):
    task = TASK_OF[env_id]
    env = gym.make(env_id)
    obs, info = env.reset(seed=3)
    env.action_space.seed(3)
    assert KEYS[task] <= set(info["driving"])
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(reward)
        if terminated or truncated:
            break
    if task == "parking":
        assert set(obs) == {"observation", "achieved_goal", "desired_goal"} and obs["observation"].shape == (
            6,
        )
    else:
        assert obs.shape == catalog.info(task).obs_shape
        assert env.observation_space.contains(obs)
    env.close()


def test_same_seed_same_episode():
    a, b = gym.make("deepapps/lane-keeping-narrow-v0"), gym.make("deepapps/lane-keeping-narrow-v0")
    oa, ia = a.reset(seed=11)
    ob, ib = b.reset(seed=11)
    assert np.array_equal(oa, ob) and ia["driving"]["lateral_offset"] == ib["driving"]["lateral_offset"]


def test_narrow_lane_is_a_true_3_5_m_lane():
    env = gym.make("deepapps/lane-keeping-narrow-v0")
    env.reset(seed=5)
    lane = env.unwrapped.lane
    for s in (20.0, 57.0, 133.0):
        left, right = lane.position(s, 1.75), lane.position(s, -1.75)
        assert np.linalg.norm(left - right) == pytest.approx(3.5, abs=1e-6)
        s_back, lat = lane.local_coordinates(lane.position(s, 0.6))
        assert s_back == pytest.approx(s, abs=0.05) and lat == pytest.approx(0.6, abs=0.01)


def test_narrow_steering_is_delayed_two_steps():
    env = gym.make("deepapps/lane-keeping-narrow-v0").unwrapped
    env.config["narrow"]["steering_noise"] = 0.0
    env.reset(seed=1)
    applied = []
    for command in (0.5, 0.0, 0.0, 0.0):
        env.step(np.array([command], dtype=np.float32))
        applied.append(env.vehicle.action["steering"])
    assert applied[0] == 0.0 and applied[1] == 0.0 and applied[2] == pytest.approx(0.5 * np.pi / 3)


def test_camera_sees_the_lane_lines():
    env = gym.make("deepapps/lane-keeping-narrow-v0")
    obs, _ = env.reset(seed=2)
    frame = obs[-1]
    ahead = frame[10]  # a row ahead of the car: two lines about 3.5 m / 0.3 m = 12 px apart
    cols = np.flatnonzero(ahead > 60)
    assert cols.size >= 2 and 8 <= cols.max() - cols.min() <= 16


def test_parking_fast_observation_matches_highway_env():
    from deepapps_driving.envs.parking import goal_observation

    env = gym.make("deepapps/parking-v0")
    env.reset(seed=4)
    for _ in range(3):
        env.step(env.action_space.sample())
    base = env.unwrapped
    reference = type(base.observation_type).observe(base.observation_type)
    fast = goal_observation(base.vehicle)
    for key in reference:
        np.testing.assert_allclose(fast[key], reference[key], atol=1e-12)


def test_occupancy_grid_holds_the_ego_car_in_its_centre():
    env = gym.make("deepapps/lane-change-v0")
    obs, info = env.reset(seed=0)
    assert obs[0, 5, 2] == 1.0 and obs[2, 5, 2] == 0.0  # present, zero speed relative to itself
    assert obs[3, :, 2].all()  # the ego car's own lane is on the road
