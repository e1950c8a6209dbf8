"""Driving metrics in the openpilot spirit, as plain functions of per-step trajectories (numpy only).

Each ``*_metrics`` function takes one episode's arrays and returns a flat dict; :func:`aggregate`
turns a list of episode dicts into the figures ``deepapps eval`` reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CENTRE_BAND_M = 0.5  # "within 0.5 m of the centre"
PING_PONG_SWING_M = 0.1  # a lateral swing counts when it is at least this big


def departures(offsets: Sequence[float], threshold: float) -> int:
    """Lane departures: times |offset| goes from within ``threshold`` to beyond it (a wheel crosses
    the line); an episode that starts outside counts once."""
    outside = np.abs(np.asarray(offsets, dtype=float)) > threshold
    if outside.size == 0:
        return 0
    return int(outside[0]) + int(np.count_nonzero(outside[1:] & ~outside[:-1]))


def ping_pong(offsets: Sequence[float], dt: float, min_swing: float = PING_PONG_SWING_M) -> float:
    """Oscillation in the lane: direction reversals of the lateral motion per minute, counting only
    swings of at least ``min_swing`` metres between consecutive turning points."""
    x = np.asarray(offsets, dtype=float)
    if x.size < 3:
        return 0.0
    reversals, anchor, direction = 0, x[0], 0
    for value in x[1:]:
        move = value - anchor
        if direction >= 0 and move <= -min_swing:
            reversals += direction > 0
            direction, anchor = -1, value
        elif direction <= 0 and move >= min_swing:
            reversals += direction < 0
            direction, anchor = 1, value
        elif (direction > 0 and value > anchor) or (direction < 0 and value < anchor):
            anchor = value  # still moving the same way: follow the extreme
    minutes = x.size * dt / 60.0
    return float(reversals / minutes)


def rms_derivative(values: Sequence[float], dt: float, order: int = 1) -> float:
    """Root mean square of the ``order``-th time derivative (finite differences)."""
    x = np.asarray(values, dtype=float)
    if x.size <= order:
        return 0.0
    d = np.diff(x, n=order) / dt**order
    return float(np.sqrt(np.mean(d**2)))


def lane_keeping_metrics(
    offsets: Sequence[float],
    steering: Sequence[float],
    lane_width: float,
    dt: float,
    rewards: Sequence[float] = (),
) -> dict:
    """Lateral offset (m) statistics, departures, share within 0.5 m, steering jerk and ping-pong.

    ``steering`` is the applied steering angle (rad) per step; steering jerk is the RMS of its
    second derivative (rad/s^2), the steering rate its first (rad/s).
    """
    off = np.abs(np.asarray(offsets, dtype=float))
    threshold = lane_width / 2 - 1.0  # half the car (2 m wide) over the line
    return {
        "return": float(np.sum(rewards)) if len(rewards) else None,
        "mean_abs_offset_m": float(off.mean()) if off.size else 0.0,
        "p95_abs_offset_m": float(np.percentile(off, 95)) if off.size else 0.0,
        "max_abs_offset_m": float(off.max()) if off.size else 0.0,
        "departures": departures(offsets, threshold),
        "share_within_0_5m": float(np.mean(off <= CENTRE_BAND_M)) if off.size else 0.0,
        "steering_rate_rms": rms_derivative(steering, dt, 1),
        "steering_jerk_rms": rms_derivative(steering, dt, 2),
        "ping_pong_per_min": ping_pong(offsets, dt),
        "lane_width_m": float(lane_width),
    }


def cruise_metrics(
    speeds: Sequence[float],
    gaps: Sequence[float],
    accels: Sequence[float],
    time_gap: float,
    dt: float,
    crashed: bool,
) -> dict:
    """Collision, mean speed, minimum time headway (gap / speed, while moving above 1 m/s),
    acceleration jerk (RMS and max, m/s^3) and how far the headway strays from the chosen time gap."""
    v = np.asarray(speeds, dtype=float)
    g = np.asarray(gaps, dtype=float)
    moving = v > 1.0
    headway = g[moving] / v[moving] if moving.any() else np.array([math.inf])
    jerk = np.diff(np.asarray(accels, dtype=float)) / dt if len(accels) > 1 else np.zeros(1)
    return {
        "collision": bool(crashed),
        "mean_speed_mps": float(v.mean()) if v.size else 0.0,
        "min_time_headway_s": float(headway.min()),
        "mean_time_headway_s": float(np.mean(headway[np.isfinite(headway)]))
        if np.isfinite(headway).any()
        else None,
        "time_gap_setting_s": float(time_gap),
        "mean_abs_headway_error_s": float(np.mean(np.abs(headway - time_gap))) if moving.any() else None,
        "min_gap_m": float(g.min()) if g.size else None,
        "jerk_rms": float(np.sqrt(np.mean(jerk**2))),
        "jerk_max_abs": float(np.abs(jerk).max()),
    }


def lane_change_metrics(
    speeds: Sequence[float], lanes: Sequence[int], xs: Sequence[float], crashed: bool
) -> dict:
    """Crash, mean speed, lane changes and lane changes per km driven."""
    lane = np.asarray(lanes, dtype=int)
    changes = int(np.count_nonzero(np.diff(lane))) if lane.size > 1 else 0
    km = (float(xs[-1]) - float(xs[0])) / 1000.0 if len(xs) > 1 else 0.0
    return {
        "crash": bool(crashed),
        "mean_speed_mps": float(np.mean(speeds)) if len(speeds) else 0.0,
        "lane_changes": changes,
        "distance_km": km,
        "lane_changes_per_km": changes / km if km > 0 else 0.0,
    }


def parking_metrics(success: bool, crashed: bool, steps: int, dt: float) -> dict:
    """Success, collision and time to park (seconds; None when the car did not park)."""
    return {
        "success": bool(success),
        "collision": bool(crashed),
        "time_to_park_s": steps * dt if success else None,
    }


def aggregate(task: str, episodes: list[dict]) -> dict:
    """The eval figures of a task from its episodes' metric dicts."""
    n = len(episodes)

    def mean(key: str):
        vals = [e[key] for e in episodes if e.get(key) is not None and np.isfinite(e[key])]
        return float(np.mean(vals)) if vals else None

    def total(key: str) -> int:
        return int(sum(int(e[key]) for e in episodes))

    if task == "lane-keeping":
        offsets = mean("mean_abs_offset_m")
        return {
            "episodes": n,
            "mean_return": mean("return"),
            "mean_abs_offset_m": offsets,
            "p95_abs_offset_m": mean("p95_abs_offset_m"),
            "max_abs_offset_m": max(e["max_abs_offset_m"] for e in episodes),
            "departures_total": total("departures"),
            "departures_per_episode": total("departures") / n,
            "share_within_0_5m": mean("share_within_0_5m"),
            "steering_jerk_rms": mean("steering_jerk_rms"),
            "steering_rate_rms": mean("steering_rate_rms"),
            "ping_pong_per_min": mean("ping_pong_per_min"),
        }
    if task == "adaptive-cruise":
        return {
            "episodes": n,
            "collisions": total("collision"),
            "collision_rate": total("collision") / n,
            "mean_speed_mps": mean("mean_speed_mps"),
            "min_time_headway_s": min(e["min_time_headway_s"] for e in episodes),
            "mean_time_headway_s": mean("mean_time_headway_s"),
            "mean_abs_headway_error_s": mean("mean_abs_headway_error_s"),
            "min_gap_m": min(e["min_gap_m"] for e in episodes if e["min_gap_m"] is not None),
            "jerk_rms": mean("jerk_rms"),
            "jerk_max_abs": max(e["jerk_max_abs"] for e in episodes),
        }
    if task == "lane-change":
        km = sum(e["distance_km"] for e in episodes)
        changes = total("lane_changes")
        return {
            "episodes": n,
            "crashes": total("crash"),
            "crash_rate": total("crash") / n,
            "mean_speed_mps": mean("mean_speed_mps"),
            "lane_changes_per_km": changes / km if km > 0 else 0.0,
            "distance_km": km,
        }
    if task == "parking":
        return {
            "episodes": n,
            "success_rate": total("success") / n,
            "collisions": total("collision"),
            "collision_rate": total("collision") / n,
            "mean_time_to_park_s": mean("time_to_park_s"),
        }
    raise ValueError(f"unknown driving task {task!r}")
