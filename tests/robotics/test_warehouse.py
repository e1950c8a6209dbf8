"""The warehouse environment follows PettingZoo's parallel API; moves and collisions follow its rules."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from deepapps_robotics.warehouse.env import OBS_SIZE, WarehouseEnv
from deepapps_robotics.warehouse.scripted import ScriptedPolicy

STAY, UP, DOWN, LEFT, RIGHT = range(5)


def test_parallel_api():
    parallel_api_test(WarehouseEnv(n_robots=4, max_steps=60), num_cycles=100)


def _place(env, *cells):
    env.reset(seed=0)
    env.pos = np.array(cells, dtype=np.int64)
    env.stats["collisions"] = 0


def test_swap_and_same_cell_are_collisions_and_nobody_moves():
    env = WarehouseEnv(n_robots=2)
    _place(env, (1, 3), (2, 3))
    _, rew, *_ = env.step({"robot_0": RIGHT, "robot_1": LEFT})  # swap places
    assert env.stats["collisions"] == 1 and env.pos.tolist() == [[1, 3], [2, 3]]
    _place(env, (1, 3), (3, 3))
    env.step({"robot_0": RIGHT, "robot_1": LEFT})  # both into (2, 3)
    assert env.stats["collisions"] == 1 and env.pos.tolist() == [[1, 3], [3, 3]]


def test_following_a_moving_robot_is_fine_and_shelves_block():
    env = WarehouseEnv(n_robots=2)
    _place(env, (1, 3), (2, 3))
    env.step({"robot_0": RIGHT, "robot_1": RIGHT})  # a train: both move, no collision
    assert env.stats["collisions"] == 0 and env.pos.tolist() == [[2, 3], [3, 3]]
    _place(env, (3, 0), (0, 9))
    env.step({"robot_0": DOWN, "robot_1": STAY})  # (3, 1) is a shelf: robot 0 stays, no collision
    assert env.pos[0].tolist() == [3, 0] and env.stats["collisions"] == 0
    _place(env, (1, 3), (2, 3))
    env.step({"robot_0": RIGHT, "robot_1": STAY})  # driving into a standing robot
    assert env.stats["collisions"] == 1 and env.pos[0].tolist() == [1, 3]


def test_observation_and_jobs():
    env = WarehouseEnv(n_robots=6)
    obs, _ = env.reset(seed=3)
    assert all(
        o.shape == (OBS_SIZE,) and o.dtype == np.float32 and np.abs(o).max() <= 1 for o in obs.values()
    )
    assert len(set(env.targets)) == 6  # no two robots are sent to the same pick spot


def test_scripted_baseline_delivers():
    env, policy = WarehouseEnv(n_robots=4, max_steps=150), ScriptedPolicy(0)
    obs, _ = env.reset(seed=10_001)
    while env.agents:
        obs, *_ = env.step(policy.act(obs))
    assert env.stats["deliveries"] >= 3 and env.stats["steps"] == 150


def test_bundled_policy_runs_and_reports():
    import deepapps

    runner = deepapps.load("warehouse", device="cpu")
    result = runner(60, robots=4, seed=10_002)
    assert result.steps == 60 and len(result.deliveries_over_time) == 60
    assert result.throughput_per_100_steps == pytest.approx(100 * result.deliveries / 60, abs=1e-3)
    assert result.plot().size[0] > 300
    with pytest.raises(deepapps.InputError, match="episode length"):
        runner("many")


def test_train_writes_a_policy_the_runner_loads(tmp_path):
    import deepapps
    from deepapps_robotics.warehouse.train import train

    summary = train(
        None,
        None,
        tmp_path,
        "cpu",
        "fp32",
        robots=3,
        steps=192,
        imitation_samples=60,
        envs=1,
        horizon=32,
        lr=3e-4,
        seed=1,
        progress=False,
    )
    assert (
        summary["updates"] == 2
        and (tmp_path / "metrics.jsonl").exists()
        and (tmp_path / "metrics.png").exists()
    )
    runner = deepapps.load("warehouse", tmp_path / "model.safetensors", device="cpu")
    assert runner(20, robots=3).steps == 20
