"""The driving tasks on the core contract: deepapps.load gives a policy for a plain gymnasium loop;
run/eval/bench through the CLI; bad input answered in one line before anything loads."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner

import deepapps
from deepapps.cli import cli
from deepapps_driving import catalog
from deepapps_driving import runner as driving_runner
from deepapps_driving.policies import build_network, save_policy


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_baseline_acts_in_a_plain_gymnasium_loop():
    policy = deepapps.load("adaptive-cruise", "adaptive-cruise-idm")
    env = gym.make("deepapps/adaptive-cruise-v0")
    obs, info = env.reset(seed=7)
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(policy.act(obs))
        assert not terminated
    assert info["driving"]["speed"] >= 0


def test_run_one_episode_with_video(tmp_path):
    out = tmp_path / "ep.gif"
    result = deepapps.load("lane-keeping", "lane-keeping-expert")(3, variant="narrow", record=out)
    assert result.seed == 3 and result.env_id == "deepapps/lane-keeping-narrow-v0" and result.steps == 200
    assert result.metrics["departures"] == 0 and out.exists() and result.video == str(out)
    assert result.timings["episode"] > 0 and result.plot().size[0] > 100
    assert json.loads(result.to_json())["metrics"]["lane_width_m"] == 3.5


def test_a_collision_is_a_result_not_an_exception():
    result = deepapps.load("lane-change", "lane-change-random")(0)
    assert result.outcome in {"collision", "time limit"} and "crash" in result.metrics
    crashed = [deepapps.load("lane-change", "lane-change-random")(s) for s in range(1, 4)]
    assert any(r.outcome == "collision" and r.metrics["crash"] for r in [result, *crashed])


def test_cli_eval_json_on_held_out_seeds():
    out = _cli(
        "eval",
        "adaptive-cruise",
        "--model",
        "adaptive-cruise-idm",
        "--episodes",
        "1",
        "--seed",
        "4",
        "--json",
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output.strip().splitlines()[-1])
    assert (
        report["n"] == 1
        and report["split"] == f"seeds {catalog.HELD_OUT_SEED_BASE + 4}..{catalog.HELD_OUT_SEED_BASE + 4}"
    )
    assert report["metrics"]["collisions"] == 0 and report["extra"]["episodes"][0]["seed"] == 4
    assert report["extra"]["episodes"][0]["env_seed"] == catalog.HELD_OUT_SEED_BASE + 4


def test_cli_bench():
    out = _cli("bench", "lane-keeping", "--model", "lane-keeping-expert", "--steps", "20", "--json")
    assert out.exit_code == 0, out.output
    figures = json.loads(out.output.strip().splitlines()[-1])["figures"]
    assert figures["loop_steps_per_s"]["value"] > 0


@pytest.fixture
def no_policy_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a policy was loaded before the bad input was refused")

    monkeypatch.setattr(driving_runner, "load_policy_for", refuse)
    deepapps.clear_cache()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "lane-keping", "0"], "unknown task 'lane-keping'"),
        (
            ["run", "lane-keeping", "0", "--model", "lane-keeping-expurt"],
            "did you mean 'lane-keeping-expert'",
        ),
        (
            ["run", "lane-keeping", "0", "--model", "adaptive-cruise-idm"],
            "is a model for task 'adaptive-cruise'",
        ),
        (["run", "lane-keeping", "zero"], "a driving episode is named by its seed"),
        (["run", "lane-keeping", "0", "--record", "clip.avi"], "use a .mp4 or .gif file name"),
        (["run", "parking", "0", "--variant", "wall"], "did you mean walls?"),
        (["eval", "adaptive-cruise", "--episodes", "0"], "option --episodes: 0 is below the minimum 1"),
        (["eval", "adaptive-cruise", "--episodes", "-3"], "below the minimum 1"),
        (["eval", "lane-change", "--dataset", "x"], "driving tasks take no dataset"),
    ],
)
def test_bad_input_is_one_line(args, message, no_policy_load):
    out = _cli(*args)
    assert out.exit_code != 0
    lines = [line for line in out.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), out.output
    assert message in lines[0]


def test_policy_file_for_another_task_or_shape(tmp_path):
    arch = {"kind": "mlp", "inputs": 7, "hidden": [4], "outputs": 1, "output": "tanh"}
    path = save_policy(tmp_path / "cruise.safetensors", "adaptive-cruise", build_network(arch), arch)
    out = _cli("run", "parking", "0", "--model", str(path))
    assert out.exit_code != 0
    assert "is for task 'adaptive-cruise', not 'parking'" in out.output.strip().splitlines()[-1]
    from deepapps_driving.policies import NetworkPolicy, PilotNet

    policy = NetworkPolicy("lane-keeping", "p", PilotNet(width=0.25), {"output": "identity"})
    with pytest.raises(deepapps.InputError, match="a lane-keeping policy expects"):
        policy.act(np.zeros((3, 64, 64)))


def test_cli_trains_a_lane_change_dqn_with_its_recipe_options(tmp_path):
    out = tmp_path / "lc"
    args = ["--steps", "250", "--gamma", "0.9", "--n-steps", "2", "--veto-penalty", "0.1", "--reward", "speed"]
    result = _cli("train", "lane-change", "--out", str(out), "--eval-episodes", "0", *args)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "card.json").read_text())
    training = card["training"]
    assert training["steps_done"] == 250 and training["gamma"] == 0.9 and training["n_steps"] == 2
    assert training["veto_penalty"] == 0.1 and training["reward_changes"]["normalize_reward"] is False
    assert training["shield"]["decel"] == 5.0 and "--reward speed" in card["training_command"]
    policy = deepapps.load("lane-change", str(out / "model.safetensors"))
    assert policy.policy.shield is not None and policy.act(gym.make("deepapps/lane-change-v0").reset(seed=0)[0]) in range(5)
    bad = _cli("train", "lane-change", "--out", str(tmp_path / "bad"), "--reward", "fast")
    assert bad.exit_code != 0 and "reward" in bad.output
