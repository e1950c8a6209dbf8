"""Policy files: safetensors round trip, one-line errors for files of another task or shape, and
stable-baselines3 exports that act exactly like the sb3 policy they came from."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from deepapps import InputError
from deepapps_driving import catalog
from deepapps_driving.export import export_actor, export_q_network, export_rate_actor
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


def test_jerk_actor_drives_the_plain_env_like_its_training_view():
    """A SAC actor trained on JerkAction acts on the plain env: its exported policy integrates the
    jerk command from the observed acceleration, so both runs apply the same accelerations, and
    no step changes the acceleration faster than JERK_MAX."""
    from stable_baselines3 import SAC

    from deepapps_driving.envs.cruise import JERK_MAX, JerkAction
    from deepapps_driving.policies import NetworkPolicy

    view = JerkAction(gym.make("deepapps/adaptive-cruise-v0"))
    model = SAC("MlpPolicy", view, policy_kwargs={"net_arch": [16, 16]}, seed=0, device="cpu")
    net, arch = export_rate_actor(model)
    policy = NetworkPolicy("adaptive-cruise", "x", net, arch)
    plain = gym.make("deepapps/adaptive-cruise-v0")
    obs, _ = view.reset(seed=3)
    plain_obs, _ = plain.reset(seed=3)
    for _ in range(20):
        jerk, _ = model.predict(obs, deterministic=True)
        obs, _, _, _, info = view.step(jerk)
        plain_obs, _, _, _, plain_info = plain.step(policy.act(plain_obs))
        assert plain_info["driving"]["accel"] == pytest.approx(info["driving"]["accel"], abs=1e-4)
        assert abs(plain_info["driving"]["jerk"]) <= JERK_MAX + 1e-4


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
