"""Warehouse evaluation: the learned shared policy against the scripted baseline on held-out episodes."""

from __future__ import annotations

import statistics
import time
from typing import Any

from deepapps.resolution import ModelRef
from deepapps.results import EvalReport

from .env import WarehouseEnv
from .scripted import ScriptedPolicy
from .train import TRAIN_SEED_LIMIT

TASK = "warehouse"


def play(env: WarehouseEnv, policy, seed: int, frames: list | None = None) -> dict[str, Any]:
    """One episode; its stats plus deliveries over time (for the throughput plot)."""
    obs, _ = env.reset(seed=seed)
    policy.reset()
    curve = []
    while env.agents:
        obs, *_ = env.step(policy.act(obs))
        curve.append(env.stats["deliveries"])
        if frames is not None:
            from .env import render_frame

            frames.append(render_frame(env))
    return {**env.stats, "curve": curve}


def compare(
    policy, robots: int, episodes: int, max_steps: int, seed0: int = TRAIN_SEED_LIMIT
) -> dict[str, Any]:
    """Mean throughput and collisions per 100 steps for the policy and the scripted baseline, same seeds."""
    out = {}
    for name, pol in (("learned", policy), ("scripted", ScriptedPolicy(seed0))):
        env = WarehouseEnv(n_robots=robots, max_steps=max_steps)
        runs = [play(env, pol, seed0 + k) for k in range(episodes)]
        per100 = 100.0 / max_steps
        out[name] = {
            "throughput_per_100_steps": round(statistics.fmean(r["deliveries"] for r in runs) * per100, 3),
            "collisions_per_100_steps": round(statistics.fmean(r["collisions"] for r in runs) * per100, 3),
            "deliveries": [r["deliveries"] for r in runs],
            "collisions": [r["collisions"] for r in runs],
        }
    return out


def evaluate(
    model: ModelRef,
    dataset: str | None,
    split: str,
    limit: int | None,
    device: str,
    precision: str,
    episodes: int,
    robots: int,
    max_steps: int,
    greedy: bool,
) -> EvalReport:
    """``episodes`` held-out episodes (seeds from 10,000; ``--limit`` caps them), learned vs scripted."""
    import deepapps

    t0 = time.perf_counter()
    n = min(limit or episodes, episodes)
    runner = deepapps.load(TASK, model, device=device, precision=precision)
    result = compare(runner.policy(greedy=greedy), robots, n, max_steps)
    learned, scripted = result["learned"], result["scripted"]
    metrics = {
        "learned_throughput_per_100_steps": learned["throughput_per_100_steps"],
        "scripted_throughput_per_100_steps": scripted["throughput_per_100_steps"],
        "learned_collisions_per_100_steps": learned["collisions_per_100_steps"],
        "scripted_collisions_per_100_steps": scripted["collisions_per_100_steps"],
        "learned_beats_scripted": bool(
            learned["throughput_per_100_steps"] > scripted["throughput_per_100_steps"]
            and learned["collisions_per_100_steps"] <= scripted["collisions_per_100_steps"]
        ),
    }
    return EvalReport(
        task=TASK,
        model=model.name,
        dataset=dataset or "warehouse-episodes",
        split=split,
        n=n,
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra={
            "robots": robots,
            "max_steps": max_steps,
            "seeds": f"{TRAIN_SEED_LIMIT}..{TRAIN_SEED_LIMIT + n - 1}",
            "per_episode": {
                k: {"deliveries": v["deliveries"], "collisions": v["collisions"]} for k, v in result.items()
            },
        },
    )
