"""The bundled policies: safetensors with a card, loaded by deepapps.load(TASK) by default, acting on
plain gymnasium observations."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import deepapps
from deepapps_driving import catalog

MODELS = Path(catalog.__file__).parent / "models"
BUNDLED = ["lane-keeping", "adaptive-cruise", "parking", "lane-change"]


def _bundled(task: str) -> bool:
    return (MODELS / f"{catalog.info(task).learned}.safetensors").exists()


@pytest.mark.parametrize("task", [t for t in BUNDLED if _bundled(t)])
def test_bundled_policy_is_the_default_and_has_a_card(task):
    name = catalog.info(task).learned
    spec = deepapps.registry.task(task)
    assert spec.default_model == name
    card = json.loads((MODELS / f"{name}.card.json").read_text())
    assert card["params"] > 0 and card["training_command"].startswith(f"deepapps train {task}")
    assert card["training"]["cpu_seconds"] > 0 and card["metrics"]
    assert (MODELS / f"{name}.safetensors").stat().st_size < 10e6
    assert deepapps.registry.model(name).card.params == card["params"]


def test_bundled_lane_keeper_drives_a_plain_gymnasium_loop():
    policy = deepapps.load("lane-keeping")
    assert policy.model_name == "lane-keeping-pilotnet"
    env = gym.make("deepapps/lane-keeping-narrow-v0")
    obs, info = env.reset(seed=catalog.HELD_OUT_SEED_BASE + 1)
    offsets = []
    for _ in range(60):
        action = policy.act(obs)
        assert action.shape == (1,) and -1 <= action[0] <= 1
        obs, reward, terminated, truncated, info = env.step(action)
        offsets.append(abs(info["driving"]["lateral_offset"]))
    assert max(offsets) < 0.75  # no lane departure on this held-out road


def test_bundled_cruise_policy_follows_without_collision():
    policy = deepapps.load("adaptive-cruise")
    assert policy.model_name == "adaptive-cruise-sac"
    env = gym.make("deepapps/adaptive-cruise-v0")
    obs, info = env.reset(seed=catalog.HELD_OUT_SEED_BASE + 2)
    for _ in range(150):
        obs, reward, terminated, truncated, info = env.step(policy.act(obs))
        assert not terminated
    assert np.isfinite(info["driving"]["gap"]) and info["driving"]["gap"] > 0
