"""``deepapps eval TASK`` and ``deepapps bench TASK`` for the driving tasks.

Evaluation runs the policy on held-out seeds (``HELD_OUT_SEED_BASE + seed + i``; training never
uses seeds that large) and reports the task's aggregated metrics plus one line per episode.
"""

from __future__ import annotations

import time

from deepapps import BenchReport, EvalReport, InputError

from . import catalog

NO_DATASET = (
    "driving tasks take no dataset: episodes come from the simulator "
    "(choose them with --variant, --episodes and --seed)"
)


def _check_dataset(dataset: str | None) -> None:
    if dataset is not None:
        raise InputError(NO_DATASET)


def evaluate_task(
    task: str,
    model,
    dataset: str | None,
    split: str,
    limit: int | None,
    device: str,
    precision: str,
    variant: str,
    episodes: int,
    seed: int,
) -> EvalReport:
    """Run ``episodes`` held-out episodes (at most ``limit``) and aggregate their metrics."""
    import deepapps
    from deepapps.runtime.progress import progress
    from deepapps.runtime.threads import set_threads

    from .episode import run_episode
    from .metrics import aggregate
    from .train import policy_threads

    _check_dataset(dataset)
    set_threads(policy_threads())
    n = min(episodes, limit) if limit else episodes
    runner = deepapps.load(task, model, device=device, precision=precision)
    v = catalog.info(task).variant(variant)
    first = catalog.HELD_OUT_SEED_BASE + seed
    t0 = time.perf_counter()
    per_episode = []
    for i in progress(range(n), desc=f"{task} {v.name}", unit="episode"):
        log = run_episode(task, runner.policy, v.name, first + i)
        # "seed" counts from --seed; "env_seed" is what the environment was reset with
        row = {"seed": seed + i, "env_seed": first + i, "outcome": log.outcome, "steps": log.steps}
        per_episode.append({**row, **log.metrics()})
    summary = aggregate(task, per_episode)
    return EvalReport(
        task=task,
        model=runner.model_name,
        dataset=v.env_id,
        split=f"seeds {first}..{first + n - 1}",
        n=n,
        metrics=summary,
        seconds=time.perf_counter() - t0,
        extra={"variant": v.name, "held_out_seed_base": catalog.HELD_OUT_SEED_BASE, "episodes": per_episode},
    )


def bench_task(task: str, model, device: str, precision: str, variant: str, steps: int) -> BenchReport:
    """Environment steps per second with the policy in the loop, and the policy's latency per action."""
    import numpy as np

    import deepapps

    from .envs import make_env

    runner = deepapps.load(task, model, device=device, precision=precision)
    v = catalog.info(task).variant(variant)
    env = make_env(v.env_id)
    t0 = time.perf_counter()
    obs, info = env.reset(seed=catalog.HELD_OUT_SEED_BASE)
    act_ms, env_ms = [], []
    for _ in range(steps):
        ta = time.perf_counter()
        action = runner.act(obs, info)
        tb = time.perf_counter()
        obs, _, terminated, truncated, info = env.step(action)
        act_ms.append((tb - ta) * 1e3)
        env_ms.append((time.perf_counter() - tb) * 1e3)
        if terminated or truncated:
            obs, info = env.reset()
    env.close()
    report = BenchReport(
        task=task,
        model=runner.model_name,
        figures={},
        seconds=time.perf_counter() - t0,
        setup={"env_id": v.env_id, "steps": steps, "device": device},
    )
    report.add("policy_act_median", float(np.median(act_ms)), "ms", what="one act(obs) call")
    report.add("env_step_median", float(np.median(env_ms)), "ms", what="one environment step")
    report.add(
        "loop_steps_per_s",
        steps / (sum(act_ms) + sum(env_ms)) * 1e3,
        "steps/s",
        what="policy + environment, one process",
    )
    return report


def _verbs(task: str):
    def evaluate(model, dataset, split, limit, device, precision, variant, episodes, seed):
        return evaluate_task(task, model, dataset, split, limit, device, precision, variant, episodes, seed)

    def bench(model, device, precision, variant, steps):
        return bench_task(task, model, device, precision, variant, steps)

    return evaluate, bench


evaluate_lane_keeping, bench_lane_keeping = _verbs(catalog.LANE_KEEPING)
evaluate_adaptive_cruise, bench_adaptive_cruise = _verbs(catalog.ADAPTIVE_CRUISE)
evaluate_lane_change, bench_lane_change = _verbs(catalog.LANE_CHANGE)
evaluate_parking, bench_parking = _verbs(catalog.PARKING)
