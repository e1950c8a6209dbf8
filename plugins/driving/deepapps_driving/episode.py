"""One episode of a policy in a ``deepapps/...`` environment: the per-step log, its metrics, and
(optionally) the rendered frames with the metrics overlaid.

A collision or a lane departure is an outcome of the episode, recorded in its metrics; only a
broken environment or policy raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import catalog, metrics
from .controllers import Policy

DT = {catalog.LANE_KEEPING: 0.1, catalog.ADAPTIVE_CRUISE: 0.1, catalog.LANE_CHANGE: 1.0, catalog.PARKING: 0.2}


@dataclass
class EpisodeLog:
    task: str
    variant: str
    env_id: str
    seed: int
    steps: int = 0
    outcome: str = "time limit"
    rewards: list[float] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    states: list[dict] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)

    def series(self, key: str) -> np.ndarray:
        return np.array([s.get(key, math.nan) for s in self.states], dtype=float)

    def metrics(self) -> dict:
        return episode_metrics(self)


def episode_metrics(log: EpisodeLog) -> dict:
    """The task's metrics of one logged episode (the initial state is not a step and is skipped)."""
    steps = log.states[1:] or log.states
    last = log.states[-1] if log.states else {}
    dt = DT[log.task]
    crashed = bool(last.get("crashed", False))
    if log.task == catalog.LANE_KEEPING:
        width = float(np.median([s["lane_width"] for s in steps]))
        return metrics.lane_keeping_metrics(
            [s["lateral_offset"] for s in steps], [s["steering"] for s in steps], width, dt, log.rewards
        )
    if log.task == catalog.ADAPTIVE_CRUISE:
        return metrics.cruise_metrics(
            [s["speed"] for s in steps],
            [s["gap"] for s in steps],
            [s["accel"] for s in log.states],
            last["time_gap"],
            dt,
            crashed,
        )
    if log.task == catalog.LANE_CHANGE:
        return metrics.lane_change_metrics(
            [s["speed"] for s in steps],
            [s["lane"] for s in log.states],
            [s["x"] for s in log.states],
            crashed,
        )
    return metrics.parking_metrics(bool(last.get("success", False)), crashed, log.steps, dt)


def run_episode(
    task: str,
    policy: Policy,
    variant: str | None,
    seed: int,
    record: bool = False,
    max_steps: int | None = None,
    env=None,
) -> EpisodeLog:
    """Roll ``policy`` out for one episode of ``task`` (environment seed ``seed``)."""
    from .envs import make_env

    v = catalog.info(task).variant(variant)
    own_env = env is None
    if own_env:
        env = make_env(v.env_id, render_mode="rgb_array" if record else None)
    log = EpisodeLog(task, v.name, v.env_id, seed)
    try:
        obs, info = env.reset(seed=seed)
        policy.reset()
        log.states.append(info["driving"])
        if record:
            log.frames.append(_frame(env, log))
        done = False
        while not done:
            action = policy.act(obs, info)
            obs, reward, terminated, truncated, info = env.step(action)
            log.steps += 1
            log.rewards.append(float(reward))
            log.actions.append(np.asarray(action).tolist())
            log.states.append(info["driving"])
            done = terminated or truncated or (max_steps is not None and log.steps >= max_steps)
            if record:
                log.frames.append(_frame(env, log))
        log.outcome = _outcome(task, info["driving"], terminated)
    finally:
        if own_env:
            env.close()
    return log


def _outcome(task: str, last: dict, terminated: bool) -> str:
    if last.get("crashed"):
        return "collision"
    if task == catalog.PARKING and last.get("success"):
        return "parked"
    return "time limit"


def _frame(env, log: EpisodeLog) -> np.ndarray:
    from .recorder import overlay

    picture = env.render()
    inset = None
    if log.task == catalog.LANE_KEEPING:  # what the network sees: its newest camera frame, x2
        camera = env.get_wrapper_attr("_frames")[-1]
        inset = np.kron(camera, np.ones((2, 2), dtype=np.uint8))
    return overlay(picture, log, inset)
