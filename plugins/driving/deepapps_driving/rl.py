"""Reinforcement learning with stable-baselines3: SAC for adaptive cruise, DQN for lane change,
SAC or TQC with hindsight experience replay (HER) for parking.

Each learner trains in the task's ``deepapps/...`` environment seeded below the held-out range,
logs every finished episode through a callback (progress bar, ``metrics.jsonl``, plot), stops at
``steps`` or the wall-clock limit, and is exported to a plain torch module (see :mod:`.export`).
"""

from __future__ import annotations

import time

import numpy as np

from . import catalog

WINDOW = 20  # episodes in the rolling means of the learning curve
# parking networks: smaller than rl-baselines3-zoo's 3x512 so that a CPU-bound budget buys more steps
PARKING_NET = (128, 128)


def make_callback(total: int, log, deadline: float | None, desc: str):
    """An sb3 callback: progress bar, rolling episode statistics into ``log``, wall-clock stop."""
    from stable_baselines3.common.callbacks import BaseCallback

    from deepapps.runtime.progress import progress

    class Progress(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.returns: list[float] = []
            self.lengths: list[int] = []
            self.flags: list[float] = []  # collision or success per episode
            self.bar = None

        def _on_training_start(self) -> None:
            self.bar = progress(total=total, desc=desc, unit="step")

        def _on_step(self) -> bool:
            self.bar.update(1)
            for info in self.locals.get("infos", []):
                episode = info.get("episode")
                if episode is None:
                    continue
                driving = info.get("driving", {})
                self.returns.append(float(episode["r"]))
                self.lengths.append(int(episode["l"]))
                self.flags.append(float(driving.get("success", driving.get("crashed", False))))
                row = {
                    "steps": int(self.num_timesteps),
                    "episodes": len(self.returns),
                    "return_mean": float(np.mean(self.returns[-WINDOW:])),
                    "length_mean": float(np.mean(self.lengths[-WINDOW:])),
                    ("success_rate" if "success" in driving else "collision_rate"): float(
                        np.mean(self.flags[-WINDOW:])
                    ),
                }
                log.log(**row)
                self.bar.set_postfix(ret=f"{row['return_mean']:.2f}")
            return deadline is None or time.time() < deadline

        def _on_training_end(self) -> None:
            self.bar.close()

    return Progress()


def _env(task: str, variant: str | None, seed: int, wrapper=None):
    from stable_baselines3.common.monitor import Monitor

    from .envs import make_env

    env = make_env(catalog.info(task).variant(variant).env_id)
    env = Monitor(wrapper(env) if wrapper is not None else env, info_keywords=())
    env.reset(seed=seed)
    return env


def train_cruise(steps: int, seed: int, device: str, log, deadline: float | None):
    from stable_baselines3 import SAC

    from .envs.cruise import JERK_MAX, JerkAction

    # the actor commands the jerk (rate-limited acceleration): smooth by construction
    env = _env(catalog.ADAPTIVE_CRUISE, None, seed, wrapper=JerkAction)
    model = SAC(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        buffer_size=100_000,
        learning_starts=1_000,
        batch_size=256,
        gamma=0.98,
        tau=0.01,
        train_freq=1,
        gradient_steps=1,
        policy_kwargs={"net_arch": [64, 64]},
        seed=seed,
        device=device,
        verbose=0,
    )
    model.learn(steps, callback=make_callback(steps, log, deadline, "adaptive-cruise SAC"))
    return model, {
        "algo": "SAC",
        "action": f"jerk, +/-{JERK_MAX:g} m/s^3 (rate-limited acceleration)",
        "net_arch": [64, 64],
        "learning_rate": 1e-3,
        "batch_size": 256,
        "gamma": 0.98,
    }


def train_lane_change(
    steps: int,
    seed: int,
    device: str,
    log,
    deadline: float | None,
    gamma: float,
    n_steps: int,
    veto_penalty: float,
    reward: str,
):
    """DQN inside the safety shield; the recipe options come from ``deepapps train`` (their
    defaults are declared once, in ``catalog.train_options``)."""
    from functools import partial

    from stable_baselines3 import DQN

    from .shield import Shield, shielded_env

    # trained inside the safety shield it is deployed with: the shield is part of its environment;
    # a veto penalty teaches the network to need the shield less (it keeps acting inside it)
    env = _env(catalog.LANE_CHANGE, None, seed, wrapper=partial(shielded_env, veto_penalty=veto_penalty))
    changes = catalog.LANE_CHANGE_REWARDS[reward]  # see there: training reward only
    env.unwrapped.config.update(changes)
    hyper = {
        "learning_rate": 5e-4,
        "buffer_size": 15_000,
        "learning_starts": 200,
        "batch_size": 32,
        "gamma": gamma,
        "n_steps": n_steps,
        "train_freq": 1,
        "gradient_steps": 1,
        "target_update_interval": 50,
        "exploration_fraction": 0.7,
    }
    model = DQN(
        "MlpPolicy", env, policy_kwargs={"net_arch": [256, 256]}, seed=seed, device=device, verbose=0, **hyper
    )
    model.learn(steps, callback=make_callback(steps, log, deadline, "lane-change DQN"))
    return model, {
        "algo": "DQN inside the TTC shield",
        "shield": Shield().describe(),
        "reward": reward,
        "reward_changes": changes,
        "veto_penalty": veto_penalty,
        "net_arch": [256, 256],
        **hyper,
    }


def train_parking(
    steps: int,
    seed: int,
    device: str,
    log,
    deadline: float | None,
    algo: str = "sac",
    variant: str = "no-walls",
):
    from stable_baselines3 import SAC, HerReplayBuffer

    learner = SAC
    if algo == "tqc":
        from sb3_contrib import TQC

        learner = TQC
    env = _env(catalog.PARKING, variant, seed)
    hyper = {
        "learning_rate": 1e-3,
        "buffer_size": 200_000,
        "batch_size": 256,
        "gamma": 0.95,
        "tau": 0.05,
        "learning_starts": 1_000,
    }
    model = learner(
        "MultiInputPolicy",
        env,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        policy_kwargs={"net_arch": list(PARKING_NET)},
        seed=seed,
        device=device,
        verbose=0,
        **hyper,
    )
    model.learn(steps, callback=make_callback(steps, log, deadline, f"parking {algo.upper()}+HER"))
    return model, {"algo": f"{algo.upper()}+HER", "variant": variant, "net_arch": list(PARKING_NET), **hyper}
