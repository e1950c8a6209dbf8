"""Adaptive cruise in a traffic jam: a highway-env scene of our design.

One straight lane. A platoon of IDM cars follows a head car that drives a random stop-and-go
profile (cruise, brake to a crawl or a stop, wait, speed up, repeat), so the waves reach the ego
car's lead amplified. The ego car controls only its acceleration (10 Hz). Each episode draws the
driver's chosen time gap (1.0 to 2.0 s) and the set speed; both are part of the observation, so
one policy serves every setting.

Observation (float32, 7): ego speed /30, gap to the lead (bumper to bumper) /100, lead speed /30,
closing speed (ego - lead) /10, ego acceleration /5, time gap /3, set speed /30.

The environment's action is the acceleration. A learned policy may instead command the jerk:
:class:`JerkAction` is that view for training, and :func:`rate_limited` turns the jerk command
back into an acceleration from the acceleration in the observation, so the exported policy still
answers a plain observation with an acceleration.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from ..catalog import CRUISE_OBS

ACCEL_MAX = 5.0  # m/s^2: action 1 -> +5, -1 -> -5
JERK_MAX = 8.0  # m/s^3: how fast a rate-limited (jerk-commanding) policy may change the acceleration
POLICY_HZ = 10
DURATION_S = 40.0
PLATOON = 5  # IDM cars between the head car and the ego car's lead (inclusive of the lead)
OBS_SCALE = np.array([30.0, 100.0, 30.0, 10.0, 5.0, 3.0, 30.0], dtype=np.float32)
GAP_CAP = 100.0  # m: farther leads are reported at this distance
TIME_GAP_RANGE = (1.0, 2.0)
JERK_COST = 1.0  # reward per step lost at a jerk of 5 m/s^3 (quadratic, capped at 2)
SET_SPEED_RANGE = (15.0, 20.0)


def decode_obs(obs) -> dict:
    """The cruise observation in physical units."""
    v = np.asarray(obs, dtype=np.float64).reshape(-1)[:CRUISE_OBS] * OBS_SCALE
    return {
        "speed": v[0],
        "gap": v[1],
        "lead_speed": v[2],
        "closing_speed": v[3],
        "accel": v[4],
        "time_gap": v[5],
        "set_speed": v[6],
    }


def _head_class():
    from highway_env.vehicle.kinematics import Vehicle

    class StopAndGoHead(Vehicle):
        """The platoon's head: tracks a random piecewise speed profile with bounded acceleration."""

        def __init__(self, road, position, speed: float, rng: np.random.Generator) -> None:
            super().__init__(road, position, 0.0, speed)
            self.rng, self.clock, self.phase_end, self.target = rng, 0.0, 0.0, speed
            self.accel_limit, self.brake_limit = 1.5, 3.0
            self.slow = False
            self.color = (200, 60, 60)  # red: not to be mistaken for the (yellow) ego car

        def act(self, action=None) -> None:
            if self.clock >= self.phase_end:
                self.slow = not self.slow
                self.target = float(self.rng.uniform(0.0, 3.0) if self.slow else self.rng.uniform(8.0, 15.0))
                self.phase_end = self.clock + float(
                    self.rng.uniform(3.0, 8.0) if self.slow else self.rng.uniform(5.0, 12.0)
                )
                self.brake_limit = float(self.rng.uniform(1.5, 4.0))
                self.accel_limit = float(self.rng.uniform(1.0, 2.0))
            accel = float(np.clip(1.0 * (self.target - self.speed), -self.brake_limit, self.accel_limit))
            self.action = {"steering": 0.0, "acceleration": accel}

        def step(self, dt: float) -> None:
            self.clock += dt
            super().step(dt)
            self.speed = max(self.speed, 0.0)

    return StopAndGoHead


def _env_class():
    from highway_env.envs.common.abstract import AbstractEnv
    from highway_env.road.lane import LineType, StraightLane
    from highway_env.road.road import Road, RoadNetwork
    from highway_env.vehicle.behavior import IDMVehicle

    Head = _head_class()

    class StopAndGoEnv(AbstractEnv):
        time_gap, set_speed = 1.5, 17.0  # drawn per episode in _reset

        @classmethod
        def default_config(cls) -> dict:
            config = super().default_config()
            config.update(
                {
                    # the wrapper builds the observation; this cheap one avoids highway-env's pandas code
                    "observation": {"type": "AttributesObservation", "attributes": ["time_gap"]},
                    "action": {
                        "type": "ContinuousAction",
                        "longitudinal": True,
                        "lateral": False,
                        "acceleration_range": (-ACCEL_MAX, ACCEL_MAX),
                        "speed_range": (0.0, 40.0),
                    },
                    "simulation_frequency": POLICY_HZ,
                    "policy_frequency": POLICY_HZ,
                    "duration": DURATION_S,
                    "screen_width": 600,
                    "screen_height": 150,
                    "scaling": 5.0,
                    "centering_position": [0.3, 0.5],
                }
            )
            return config

        def _reset(self) -> None:
            net = RoadNetwork()
            lane = StraightLane(
                [0.0, 0.0], [4000.0, 0.0], line_types=(LineType.CONTINUOUS, LineType.CONTINUOUS)
            )
            net.add_lane("a", "b", lane)
            self.road = Road(network=net, np_random=self.np_random, record_history=False)
            rng = self.np_random
            self.time_gap = float(rng.uniform(*TIME_GAP_RANGE))
            self.set_speed = float(rng.uniform(*SET_SPEED_RANGE))
            speed = float(rng.uniform(5.0, 12.0))
            x = 60.0
            ego = self.action_type.vehicle_class(self.road, lane.position(x, 0.0), 0.0, speed)
            self.road.vehicles.append(ego)
            self.vehicle = ego
            for i in range(PLATOON):
                x += 5.0 + 2.0 + speed * float(rng.uniform(0.9, 1.6)) * (self.time_gap if i == 0 else 1.0)
                car = IDMVehicle(
                    self.road, lane.position(x, 0.0), 0.0, speed, target_speed=15.0, enable_lane_change=False
                )
                car.check_collisions = False
                self.road.vehicles.append(car)
            x += 5.0 + 2.0 + speed * 1.5
            self.road.vehicles.append(Head(self.road, lane.position(x, 0.0), speed, rng))
            self.lead = self.road.vehicles[1]
            self.prev_accel = 0.0

        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            self.vehicle.speed = max(self.vehicle.speed, 0.0)
            return obs, reward, terminated, truncated, info

        def _reward(self, action) -> float:
            return 0.0  # the wrapper computes the reward from the driving state

        def _is_terminated(self) -> bool:
            return bool(self.vehicle.crashed)

        def _is_truncated(self) -> bool:
            return self.time >= self.config["duration"]

    return StopAndGoEnv


class CruiseWrapper(gym.Wrapper):
    """The 7-number observation, the comfort-aware reward and ``info["driving"]``.

    Reward per step: gap keeping (1 at the chosen time gap, falling to 0 at 100% error), minus a
    jerk cost, minus 1 per step below half the chosen time gap, minus 50 on a collision.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (CRUISE_OBS,), np.float32)
        self._accel = 0.0

    def _state(self) -> dict:
        base = self.env.unwrapped
        ego, lead = base.vehicle, base.lead
        gap = float(lead.position[0] - ego.position[0] - (lead.LENGTH + ego.LENGTH) / 2)
        return {
            "speed": float(ego.speed),
            "gap": gap,
            "lead_speed": float(lead.speed),
            "accel": self._accel,
            "time_gap": base.time_gap,
            "set_speed": base.set_speed,
            "headway": gap / ego.speed if ego.speed > 1.0 else math.inf,
            "x": float(ego.position[0]),
            "crashed": bool(ego.crashed),
        }

    def _obs(self, d: dict) -> np.ndarray:
        raw = [
            d["speed"],
            min(d["gap"], GAP_CAP),
            d["lead_speed"],
            d["speed"] - d["lead_speed"],
            d["accel"],
            d["time_gap"],
            d["set_speed"],
        ]
        return (np.array(raw, dtype=np.float32) / OBS_SCALE).astype(np.float32)

    def reset(self, **kwargs):
        _, info = self.env.reset(**kwargs)
        self._accel = 0.0
        d = self._state()
        return self._obs(d), {**info, "driving": d}

    def step(self, action):
        previous = self._accel
        self._accel = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1, 1) * ACCEL_MAX)
        _, _, terminated, truncated, info = self.env.step(action)
        d = self._state()
        d["jerk"] = (self._accel - previous) * POLICY_HZ
        return self._obs(d), self._reward(d), terminated, truncated, {**info, "driving": d}

    @staticmethod
    def _reward(d: dict) -> float:
        if d["crashed"]:
            return -50.0
        wanted = 2.0 + d["time_gap"] * d["speed"]
        keep = 1.0 - min(abs(d["gap"] - wanted) / max(wanted, 5.0), 1.0)
        jerk_cost = min(JERK_COST * (d["jerk"] / 5.0) ** 2, 2.0)
        too_close = 1.0 if d["speed"] > 1.0 and d["headway"] < 0.5 * d["time_gap"] else 0.0
        return float(keep - jerk_cost - too_close)


RATE_LIMIT = JERK_MAX / POLICY_HZ / ACCEL_MAX  # the largest change of the action in one step
ACCEL_OBS_INDEX = 4  # the observation's acceleration, in action units (acceleration / ACCEL_MAX)


def rate_limited(current: float, command: float, limit: float = RATE_LIMIT) -> float:
    """The acceleration action after a jerk command in [-1, 1]: the current one moved by at most
    ``limit`` (both in units of ACCEL_MAX), so the acceleration never jumps."""
    return float(np.clip(current + float(np.clip(command, -1.0, 1.0)) * limit, -1.0, 1.0))


class JerkAction(gym.ActionWrapper):
    """Training view of the cruise scene whose action is the jerk (-1 .. 1 -> -/+ JERK_MAX)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def action(self, action):
        current = self.env.get_wrapper_attr("_accel") / ACCEL_MAX
        command = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        return np.array([rate_limited(current, command)], dtype=np.float32)


def make(variant: str = "stop-and-go", render_mode: str | None = None, **config) -> gym.Env:
    return CruiseWrapper(_env_class()(config or None, render_mode=render_mode))
