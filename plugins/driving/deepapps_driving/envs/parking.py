"""Parking: highway-env's goal-conditioned ``parking-v0``, with its walls (``walls``) or without.

The observation stays highway-env's dict (``observation``, ``achieved_goal``, ``desired_goal``: x, y,
vx, vy, cos h, sin h, scaled), which hindsight experience replay needs. Episodes last 100 policy
steps (20 s at 5 Hz), as in rl-baselines3-zoo; a goal is reached when highway-env's
``info["is_success"]`` says so.
"""

from __future__ import annotations

from collections import OrderedDict

import gymnasium as gym
import numpy as np

DURATION_S = 19.99  # 100 policy steps at 5 Hz (20.0 gives 101: the clock adds 0.2 a hundred times)
SCALES = np.array([100.0, 100.0, 5.0, 5.0, 1.0, 1.0])


def goal_observation(vehicle) -> OrderedDict:
    """What highway-env's KinematicsGoal observation returns (x, y, vx, vy, cos h, sin h, scaled),
    computed with numpy instead of a pandas DataFrame per call (4 calls a step)."""

    def features(v) -> np.ndarray:
        c, s = np.cos(v.heading), np.sin(v.heading)
        return np.array([v.position[0], v.position[1], v.speed * c, v.speed * s, c, s]) / SCALES

    own = features(vehicle)
    return OrderedDict(
        [("observation", own), ("achieved_goal", own.copy()), ("desired_goal", features(vehicle.goal))]
    )


def _env_class():
    from highway_env.envs.parking_env import ParkingEnv

    class FastParkingEnv(ParkingEnv):
        def define_spaces(self) -> None:
            super().define_spaces()
            for obs_type in (self.observation_type, self.observation_type_parking):
                obs_type.observe = lambda t=obs_type: (
                    goal_observation(t.observer_vehicle)
                    if t.observer_vehicle is not None
                    and getattr(t.observer_vehicle, "goal", None) is not None
                    else t.__class__.observe(t)
                )

    return FastParkingEnv


class ParkingInfo(gym.Wrapper):
    """Adds ``info["driving"]`` (speed, position, success, crash) to parking-v0's steps."""

    def _info(self, info: dict) -> dict:
        ego = self.env.unwrapped.vehicle
        return {
            **info,
            "driving": {
                "speed": float(ego.speed),
                "x": float(ego.position[0]),
                "y": float(ego.position[1]),
                "success": bool(info.get("is_success", False)),
                "crashed": bool(ego.crashed),
            },
        }

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, self._info(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._info(info)


def make(variant: str = "no-walls", render_mode: str | None = None, **config) -> gym.Env:
    settings = {"add_walls": variant == "walls", "duration": DURATION_S}
    settings.update(config)
    return ParkingInfo(_env_class()(settings, render_mode=render_mode))


def _compute_reward(self, achieved_goal, desired_goal, info, p: float = 0.5):
    """Goal-conditioned reward for hindsight relabelling (HER), from the wrapped env."""
    return self.env.unwrapped.compute_reward(achieved_goal, desired_goal, info, p)


ParkingInfo.compute_reward = _compute_reward
