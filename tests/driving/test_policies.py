"""Policy files: safetensors round trip, one-line errors for files of another task or shape, and
stable-baselines3 exports that act exactly like the sb3 policy they came from."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from deepapps import InputError
from deepapps_driving import catalog
from deepapps_driving.export import export_actor, export_q_network
from deepapps_driving.policies import PilotNet, build_network, load_policy, save_policy

MLP = {"kind": "mlp", "inputs": 7, "hidden": [8], "outputs": 1, "output": "tanh"}


def test_round_trip_and_task_checks(tmp_path):
    net = build_network(MLP)
    path = save_policy(tmp_path / "acc.safetensors", "adaptive-cruise", net, MLP)
    policy = load_policy(path, "adaptive-cruise")
    obs = np.zeros(7, dtype=np.float32)
    assert policy.act(obs).shape == (1,)
    with pytest.raises(InputError, match="is for task 'adaptive-cruise', not 'parking'"):
        load_policy(path, "parking")
    with pytest.raises(InputError, match=r"observation of shape \(3,\)"):
        policy.act(np.zeros(3))


def test_wrong_observation_shape_in_file(tmp_path):
    from deepapps.runtime.checkpoint import save_checkpoint

    net = build_network(MLP)
    meta = {"format": "deepapps-driving-policy/1", "task": "adaptive-cruise", "obs_shape": [9], "arch": MLP}
    path = save_checkpoint(tmp_path / "odd.safetensors", net.state_dict(), meta)
    with pytest.raises(InputError, match=r"expects observations of shape \[9\]"):
        load_policy(path, "adaptive-cruise")


def test_pickles_and_foreign_files_are_refused(tmp_path):
    zip_file = tmp_path / "model.zip"
    zip_file.write_bytes(b"PK")
    with pytest.raises(InputError, match="never unpickles"):
        load_policy(zip_file, "parking")
    from deepapps.runtime.checkpoint import save_checkpoint

    other = save_checkpoint(tmp_path / "other.safetensors", PilotNet(width=0.25).state_dict(), {"x": 1})
    with pytest.raises(InputError, match="not a deepapps driving policy"):
        load_policy(other, "lane-keeping")


def test_sac_actor_export_matches_sb3():
    from stable_baselines3 import SAC

    env = gym.make("deepapps/adaptive-cruise-v0")
    model = SAC(
        "MlpPolicy", env, policy_kwargs={"net_arch": [16, 16]}, learning_starts=10, seed=0, device="cpu"
    )
    net, arch = export_actor(model)
    from deepapps_driving.policies import NetworkPolicy

    policy = NetworkPolicy("adaptive-cruise", "x", net, arch)
    for seed in range(5):
        obs = np.random.default_rng(seed).normal(size=7).astype(np.float32)
        expected, _ = model.predict(obs, deterministic=True)
        np.testing.assert_allclose(policy.act(obs), expected, atol=1e-5)


def test_her_actor_export_matches_sb3_on_dict_observations():
    from stable_baselines3 import SAC, HerReplayBuffer

    env = gym.make("deepapps/parking-v0")
    model = SAC(
        "MultiInputPolicy",
        env,
        replay_buffer_class=HerReplayBuffer,
        policy_kwargs={"net_arch": [16]},
        learning_starts=10,
        seed=0,
        device="cpu",
    )
    net, arch = export_actor(model)
    assert arch["inputs"] == catalog.PARKING_OBS
    from deepapps_driving.policies import NetworkPolicy

    policy = NetworkPolicy("parking", "x", net, arch)
    obs, _ = env.reset(seed=1)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(policy.act(obs), expected, atol=1e-5)


def test_dqn_export_matches_sb3():
    from stable_baselines3 import DQN

    env = gym.make("deepapps/lane-change-v0")
    model = DQN("MlpPolicy", env, policy_kwargs={"net_arch": [32]}, learning_starts=10, seed=0, device="cpu")
    net, arch = export_q_network(model)
    from deepapps_driving.policies import NetworkPolicy

    policy = NetworkPolicy("lane-change", "x", net, arch)
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs = rng.uniform(-1, 1, catalog.GRID_SHAPE).astype(np.float32)
        expected, _ = model.predict(obs, deterministic=True)
        assert policy.act(obs) == int(expected)
