"""The metric functions on hand-made trajectories with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepapps_driving import metrics


def test_departures_count_crossings_not_steps():
    offsets = [0.0, 0.5, 0.8, 0.9, 0.3, -0.2, -0.9, -0.1, 0.0]
    assert metrics.departures(offsets, 0.75) == 2
    assert metrics.departures([1.0, 1.0, 0.0], 0.75) == 1  # starting outside counts once
    assert metrics.departures([], 0.75) == 0


def test_ping_pong_counts_reversals_per_minute():
    t = np.arange(600) * 0.1  # one minute at 10 Hz
    weave = 0.3 * np.sin(2 * np.pi * t / 10.0)  # 6 periods: 12 reversals
    assert metrics.ping_pong(weave, 0.1) == pytest.approx(12, abs=1)
    assert metrics.ping_pong(0.02 * np.sin(2 * np.pi * t), 0.1) == 0.0  # swings under 0.1 m do not count
    assert metrics.ping_pong(np.linspace(0, 1, 600), 0.1) == 0.0


def test_lane_keeping_metrics_on_a_known_track():
    offsets = [0.1] * 90 + [1.0] * 10  # 10% of the time a wheel is over the line of a 3.5 m lane
    steering = [0.0, 0.1] * 50  # alternating: second difference +-0.2 rad per step^2
    m = metrics.lane_keeping_metrics(offsets, steering, 3.5, 0.1, rewards=[1.0] * 100)
    assert m["mean_abs_offset_m"] == pytest.approx(0.19)
    assert m["p95_abs_offset_m"] == pytest.approx(1.0)
    assert m["departures"] == 1 and m["share_within_0_5m"] == pytest.approx(0.9)
    assert m["steering_rate_rms"] == pytest.approx(1.0)  # 0.1 rad per 0.1 s
    assert m["steering_jerk_rms"] == pytest.approx(20.0)  # 0.2 rad / 0.01 s^2
    assert m["return"] == pytest.approx(100.0)


def test_cruise_metrics():
    speeds = [10.0, 10.0, 0.5]
    gaps = [20.0, 15.0, 3.0]
    accels = [0.0, 1.0, -1.0]
    m = metrics.cruise_metrics(speeds, gaps, accels, time_gap=1.5, dt=0.1, crashed=False)
    assert m["min_time_headway_s"] == pytest.approx(1.5)  # the stopped step (0.5 m/s) is left out
    assert m["mean_speed_mps"] == pytest.approx(20.5 / 3)
    assert m["jerk_rms"] == pytest.approx(math.sqrt((10**2 + 20**2) / 2))
    assert m["jerk_max_abs"] == pytest.approx(20.0) and m["min_gap_m"] == 3.0 and not m["collision"]


def test_lane_change_and_parking_metrics():
    m = metrics.lane_change_metrics([25.0, 30.0], [0, 1, 1, 2], [0.0, 100.0, 300.0, 500.0], crashed=True)
    assert m["lane_changes"] == 2 and m["distance_km"] == pytest.approx(0.5)
    assert m["lane_changes_per_km"] == pytest.approx(4.0) and m["crash"]
    assert metrics.parking_metrics(True, False, 40, 0.2)["time_to_park_s"] == pytest.approx(8.0)
    assert metrics.parking_metrics(False, True, 100, 0.2)["time_to_park_s"] is None


def test_aggregate_rates():
    eps = [metrics.parking_metrics(True, False, 10, 0.2), metrics.parking_metrics(False, True, 100, 0.2)]
    agg = metrics.aggregate("parking", eps)
    assert agg["success_rate"] == 0.5 and agg["collisions"] == 1 and agg["mean_time_to_park_s"] == 2.0
    lc = [
        metrics.lane_change_metrics([30.0], [0, 1], [0.0, 500.0], False),
        metrics.lane_change_metrics([20.0], [0, 0], [0.0, 500.0], True),
    ]
    agg = metrics.aggregate("lane-change", lc)
    assert agg["crash_rate"] == 0.5 and agg["lane_changes_per_km"] == pytest.approx(1.0)
