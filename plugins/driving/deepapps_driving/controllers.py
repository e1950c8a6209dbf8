"""Baseline controllers: the lane-keeping expert, the IDM cruise controller, a rule-based lane changer,
and random policies. Numpy only.

Every policy has ``act(obs, info=None) -> action`` for the observations of the ``deepapps/...``
environments. Controllers marked ``privileged`` read the simulator's true state from
``info["driving"]`` (what the environments return from ``reset`` and ``step``): the lane-keeping
expert is a teacher with privileged state, as in "learning by cheating"; the others need only ``obs``.
"""

from __future__ import annotations

import math

import numpy as np

from deepapps import InputError

from .envs.lane_keeping import STEERING_MAX, WHEELBASE


class Policy:
    """A driving policy: ``act(obs, info=None)`` -> an action for the task's environment."""

    task: str = ""
    name: str = ""
    privileged: bool = False

    def act(self, obs, info: dict | None = None):
        raise NotImplementedError

    def reset(self) -> None:
        """Forget any state kept between steps (called at the start of each episode)."""

    def _driving(self, info: dict | None) -> dict:
        if not info or "driving" not in info:
            raise InputError(
                f"policy {self.name!r} is privileged: pass the info dict of a deepapps/... environment "
                "as act(obs, info)"
            )
        return info["driving"]


class LaneKeepingExpert(Policy):
    """Stanley steering with curvature feed-forward, on the true state; compensates its own delay.

    delta = atan(L * curvature) - k_heading * heading_error - atan(k_offset * offset / speed),
    applied to the state predicted after the commands already queued (the narrow variant's delay).
    """

    task, name, privileged = "lane-keeping", "lane-keeping-expert", True

    def __init__(self, k_heading: float = 1.5, k_offset: float = 3.0, dt: float = 0.1) -> None:
        self.k_heading, self.k_offset, self.dt = k_heading, k_offset, dt

    def act(self, obs, info: dict | None = None) -> np.ndarray:
        d = self._driving(info)
        offset, heading, speed = d["lateral_offset"], d["heading_error"], max(d["speed"], 1.0)
        curvature = d.get("curvature", 0.0)
        for command in d.get("pending_steering", []):  # predict through the delay (kinematic model)
            steer = command * STEERING_MAX
            heading += (speed / WHEELBASE * math.tan(steer) - speed * curvature) * self.dt
            offset += speed * math.sin(heading) * self.dt
        delta = (
            math.atan(WHEELBASE * curvature)
            - self.k_heading * heading
            - math.atan(self.k_offset * offset / speed)
        )
        return np.array([np.clip(delta / STEERING_MAX, -1.0, 1.0)], dtype=np.float32)


class IDMCruise(Policy):
    """The Intelligent Driver Model (Treiber et al.) on the cruise observation: the rule-based ACC.

    a = a_max [1 - (v / v0)^4 - (s* / s)^2],  s* = s0 + v T + v dv / (2 sqrt(a_max b))
    with T the driver's chosen time gap (from the observation).
    """

    task, name = "adaptive-cruise", "adaptive-cruise-idm"

    def __init__(self, a_max: float = 1.5, b: float = 2.0, s0: float = 2.0, delta: float = 4.0) -> None:
        self.a_max, self.b, self.s0, self.delta = a_max, b, s0, delta

    def act(self, obs, info: dict | None = None) -> np.ndarray:
        from .envs.cruise import ACCEL_MAX, decode_obs

        o = decode_obs(obs)
        v, gap, closing = o["speed"], max(o["gap"], 0.1), o["closing_speed"]
        desired = self.s0 + v * o["time_gap"] + v * closing / (2 * math.sqrt(self.a_max * self.b))
        accel = self.a_max * (
            1 - (v / max(o["set_speed"], 0.1)) ** self.delta - (max(desired, 0.0) / gap) ** 2
        )
        return np.array([np.clip(accel / ACCEL_MAX, -1.0, 1.0)], dtype=np.float32)


class LaneChangeRule(Policy):
    """Speed up while the lane ahead is clear; when a car ahead is in the way, move to a clear
    neighbouring lane, else slow down.

    Reads only the occupancy grid: presence (channel 0), speed relative to the ego car (channel 2)
    and on-road (channel 3); rows run along the road (ego in row ``EGO_ROW``, larger rows ahead),
    columns across it (ego in the middle column). A car ahead is "in the way" when it is slower than
    the ego car or closer than ``keep_clear`` cells.
    """

    task, name = "lane-change", "lane-change-rule"
    LEFT, IDLE, RIGHT, FASTER, SLOWER = 0, 1, 2, 3, 4

    def __init__(self, look_ahead: int = 5, look_behind: int = 2, keep_clear: int = 2) -> None:
        self.look_ahead, self.look_behind, self.keep_clear = look_ahead, look_behind, keep_clear

    def act(self, obs, info: dict | None = None) -> int:
        from .envs.lane_change import EGO_ROW

        grid = np.asarray(obs)
        presence, relative, on_road = grid[0], grid[2], grid[3]
        rows, cols = presence.shape
        r0, c0 = EGO_ROW, cols // 2

        def blocked(col: int) -> bool:
            for r in range(r0 + 1, min(rows, r0 + self.look_ahead + 1)):
                if presence[r, col] and (relative[r, col] < 0 or r - r0 <= self.keep_clear):
                    return True
            return False

        def free(col: int) -> bool:
            if not 0 <= col < cols or on_road[r0, col] < 0.5:
                return False
            span = range(max(0, r0 - self.look_behind), min(rows, r0 + self.keep_clear + 1))
            return not any(presence[r, col] for r in span) and not blocked(col)

        if not blocked(c0):
            return self.FASTER
        for col, action in ((c0 - 1, self.LEFT), (c0 + 1, self.RIGHT)):
            if free(col):
                return action
        return self.SLOWER


class RandomPolicy(Policy):
    """Uniformly random actions from the task's action space (seeded)."""

    def __init__(self, task: str, name: str, action_space, seed: int = 0) -> None:
        self.task, self.name = task, name
        self.space = action_space
        self.space.seed(seed)

    def act(self, obs, info: dict | None = None):
        return self.space.sample()


def _action_space(task: str):
    import gymnasium as gym

    if task == "lane-change":
        return gym.spaces.Discrete(5)
    return gym.spaces.Box(-1.0, 1.0, (2 if task == "parking" else 1,), np.float32)


def random_policy(task: str, seed: int = 0) -> RandomPolicy:
    return RandomPolicy(task, f"{task}-random", _action_space(task), seed)


def random_lane_keeping() -> RandomPolicy:
    return random_policy("lane-keeping")


def random_adaptive_cruise() -> RandomPolicy:
    return random_policy("adaptive-cruise")


def random_lane_change() -> RandomPolicy:
    return random_policy("lane-change")


def random_parking() -> RandomPolicy:
    return random_policy("parking")
