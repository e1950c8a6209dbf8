"""``deepapps train TASK`` for the driving tasks: DAgger for lane keeping, SAC for adaptive cruise,
DQN for lane change, SAC/TQC + HER for parking.

Every run writes into ``--out``: ``model.safetensors`` (the policy: weights + metadata, no pickle),
``metrics.jsonl`` and ``metrics.png`` (the learning curve) and ``card.json`` (parameters, data,
command, wall and CPU time, and the metrics of a short held-out evaluation). Copy the first and
last into ``deepapps_driving/models/`` as ``<policy>.safetensors`` / ``<policy>.card.json`` to bundle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from deepapps import InputError

from . import catalog
from .evaluate import _check_dataset

LICENSE = "Apache-2.0"
PILOTNET_WIDTH = 0.5  # channels relative to PilotNet's 24-36-48-64-64 (45 K parameters)


def policy_threads() -> int:
    """Torch threads for these small networks: DEEPAPPS_THREADS when set, else 1. A second thread
    buys little for 10^4-10^5-parameter nets, and on a shared, oversubscribed CPU two threads ran
    about 70x slower than one (measured: PilotNet act 200 ms vs 2.7 ms)."""
    import os

    from deepapps.runtime.threads import thread_count

    return thread_count() if os.environ.get("DEEPAPPS_THREADS") else 1


def _command(task: str, out_dir: Path, options: dict, model=None) -> str:
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items() if v is not None)
    start = f" --model {model.name}" if model is not None else ""
    return f"deepapps train {task}{start} --out {out_dir} {flags}".strip()


def held_out_check(task: str, policy, episodes: int) -> dict:
    """Metrics of ``policy`` over ``episodes`` held-out seeds of every variant of ``task``."""
    from .episode import run_episode
    from .metrics import aggregate

    out = {}
    if episodes <= 0:
        return out
    for v in catalog.info(task).variants:
        logs = [run_episode(task, policy, v.name, catalog.HELD_OUT_SEED_BASE + i) for i in range(episodes)]
        out[v.name] = aggregate(task, [log.metrics() for log in logs])
    return out


def run_training(
    task: str,
    out_dir: Path,
    options: dict,
    body: Callable,
    summary: str,
    data: str,
    limitations: str = "",
    model=None,
) -> dict:
    """Shared frame: seeding, threads, timing (wall and CPU), the log, the policy file and its card.

    ``body(log, deadline) -> (network, arch, details)`` does the learning.
    """
    from deepapps.runtime.seeding import seed_everything
    from deepapps.runtime.threads import set_threads
    from deepapps.runtime.training import MetricsLog

    from .policies import NetworkPolicy, save_policy

    seed_everything(options["seed"])
    threads = set_threads(policy_threads())
    out_dir = Path(out_dir)
    log = MetricsLog(out_dir)
    deadline = time.time() + options["minutes"] * 60 if options.get("minutes") else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    network, arch, details = body(log, deadline)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    x = "iteration" if task == catalog.LANE_KEEPING else "steps"
    plot = log.plot(x=x, title=f"{task}: {details.get('algo', '')}")
    params = int(sum(p.numel() for p in network.parameters()))
    command = _command(task, out_dir, options, model)
    extra = {
        "training": {
            **details,
            "wall_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1),
            "threads": threads,
            "command": command,
        }
    }
    policy_path = save_policy(out_dir / "model.safetensors", task, network, arch, extra)
    policy = NetworkPolicy(task, catalog.info(task).learned, network, arch)
    check = held_out_check(task, policy, options["eval_episodes"])
    card = {
        "summary": summary,
        "params": params,
        "license": LICENSE,
        "training_data": data,
        "metrics": {
            "held_out_check": check,
            "training_wall_s": round(wall, 1),
            "training_cpu_s": round(cpu, 1),
        },
        "metrics_command": f"deepapps eval {task} --model {policy_path} --episodes {options['eval_episodes']} --json",
        "training_command": command,
        "limitations": limitations,
        "training": extra["training"],
    }
    (out_dir / "card.json").write_text(json.dumps(card, indent=2))
    return {
        "task": task,
        "policy": str(policy_path),
        "plot": str(plot) if plot else None,
        "params": params,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "held_out_check": check,
        "card": str(out_dir / "card.json"),
        "details": details,
    }


def _rl_only(model) -> None:
    if model is not None:
        raise InputError("the RL tasks train from scratch; omit --model")


def train_lane_keeping(
    model,
    dataset,
    out_dir,
    device,
    precision,
    seed,
    minutes,
    eval_episodes,
    iterations,
    episodes,
    epochs,
    batch,
    lr,
    max_samples,
    variant,
) -> dict:
    """DAgger from the privileged expert into a PilotNet CNN on camera frame stacks."""
    from deepapps.runtime.progress import progress

    from .imitation import dagger
    from .policies import PilotNet, load_policy

    _check_dataset(dataset)
    options = {
        "seed": seed,
        "minutes": minutes,
        "eval_episodes": eval_episodes,
        "iterations": iterations,
        "episodes": episodes,
        "epochs": epochs,
        "batch": batch,
        "lr": lr,
        "max_samples": max_samples,
        "variant": variant,
    }

    def body(log, deadline):
        network = (
            load_policy(model.path, catalog.LANE_KEEPING).network
            if model is not None
            else PilotNet(width=PILOTNET_WIDTH)
        )
        network = network.to(device)
        with progress(total=iterations, desc="lane-keeping DAgger", unit="iteration") as bar:
            result = dagger(
                network,
                iterations,
                episodes,
                epochs,
                batch,
                lr,
                max_samples,
                seed,
                device,
                deadline,
                log,
                bar,
                warm_start=model is not None,
                variant=variant,
            )
        network = network.cpu()
        arch = {
            "kind": "pilotnet",
            "channels": catalog.FRAME_STACK,
            "width": PILOTNET_WIDTH,
            "output": "identity",
        }
        if model is not None:
            arch = load_policy(model.path, catalog.LANE_KEEPING).arch
        return network, arch, {"algo": "DAgger (beta = 0.5^i) + MSE, mirror augmentation", **result}

    return run_training(
        catalog.LANE_KEEPING,
        out_dir,
        options,
        body,
        summary="PilotNet-style CNN (5 conv + 4 dense) from a 4x64x64 bird's-eye grayscale frame stack to steering, "
        "trained by DAgger imitation of the privileged Stanley expert on lane-keeping-v0 and the 3.5 m variant.",
        data="frames visited by the expert/learner mixture on training seeds (< 1,000,000), labelled by the expert",
        limitations="The camera is a synthetic bird's-eye raster of the lane lines (no texture, no other cars); "
        "constant 8.3 m/s; the expert it imitates reads privileged state.",
        model=model,
    )


def _rl(
    task: str,
    model,
    dataset,
    out_dir,
    device,
    options: dict,
    learn: Callable,
    export: str,
    summary: str,
    data: str,
    limitations: str,
) -> dict:
    from . import export as exporters

    _rl_only(model)
    _check_dataset(dataset)

    def body(log, deadline):
        learned, details = learn(options["steps"], options["seed"], device, log, deadline)
        network, arch = getattr(exporters, export)(learned)
        details["steps_done"] = int(learned.num_timesteps)
        return network.cpu(), arch, details

    return run_training(task, out_dir, options, body, summary, data, limitations)


def train_adaptive_cruise(
    model, dataset, out_dir, device, precision, seed, minutes, eval_episodes, steps
) -> dict:
    """SAC on the stop-and-go scene; the exported actor is the bundled policy."""
    from .rl import train_cruise

    options = {"seed": seed, "minutes": minutes, "eval_episodes": eval_episodes, "steps": steps}
    return _rl(
        catalog.ADAPTIVE_CRUISE,
        model,
        dataset,
        out_dir,
        device,
        options,
        train_cruise,
        "export_rate_actor",
        summary="SAC actor (MLP 7-64-64-1, tanh) commanding the jerk (at most 8 m/s^3) from gap, speeds, "
        "acceleration, chosen time gap and set speed; the policy integrates it into the acceleration.",
        data="episodes of deepapps/adaptive-cruise-v0 on training seeds; reward = gap keeping at the "
        "chosen time gap - jerk cost - too-close and collision penalties",
        limitations="One lane, no cut-ins; the lead's behaviour comes from IDM cars behind a random "
        "stop-and-go head car.",
    )


def train_lane_change(
    model,
    dataset,
    out_dir,
    device,
    precision,
    seed,
    minutes,
    eval_episodes,
    steps,
    gamma,
    n_steps,
    veto_penalty,
    reward,
) -> dict:
    """DQN (sb3) on highway-fast-v0 with the occupancy-grid observation, inside the safety shield."""
    from .rl import train_lane_change

    options = {
        "seed": seed,
        "minutes": minutes,
        "eval_episodes": eval_episodes,
        "steps": steps,
        "gamma": gamma,
        "veto_penalty": veto_penalty,
        "n_steps": n_steps,
        "reward": reward,
    }

    def learn(steps_, seed_, device_, log, deadline):
        return train_lane_change(
            steps_, seed_, device_, log, deadline, gamma, n_steps, veto_penalty, reward
        )

    return _rl(
        catalog.LANE_CHANGE,
        model,
        dataset,
        out_dir,
        device,
        options,
        learn,
        "export_shielded_q_network",
        summary="DQN Q-network (MLP 420-256-256-5) on a 4x21x5 occupancy grid (77.5 m ahead), greedy "
        "meta-actions, inside a constant-velocity time-to-collision safety shield that reads the same grid "
        "(vetoes unsafe lane changes and speed-ups, brakes for a close car ahead); trained inside the shield.",
        data="episodes of deepapps/lane-change-v0 (highway-fast-v0 with set speeds 0-30 m/s) on training "
        f"seeds; training reward {reward!r}: {catalog.LANE_CHANGE_REWARDS[reward]} applied to highway-env's",
        limitations="Meta-actions only; its safety comes mostly from the shield (see lane-change-dqn-unshielded); "
        "trained for a short budget on a shared CPU.",
    )


def train_parking(
    model, dataset, out_dir, device, precision, seed, minutes, eval_episodes, steps, algo, variant
) -> dict:
    """SAC or TQC with HER on parking-v0 (walls off by default)."""
    from .rl import train_parking as learn

    options = {
        "seed": seed,
        "minutes": minutes,
        "eval_episodes": eval_episodes,
        "steps": steps,
        "algo": algo,
        "variant": variant,
    }

    def learn_with(steps_, seed_, device_, log, deadline):
        return learn(steps_, seed_, device_, log, deadline, algo=algo, variant=variant)

    return _rl(
        catalog.PARKING,
        model,
        dataset,
        out_dir,
        device,
        options,
        learn_with,
        "export_actor",
        summary=f"{algo.upper()}+HER actor (MLP 18-128-128-2, tanh) from the goal-conditioned observation "
        "(achieved goal, desired goal, observation) to [acceleration, steering].",
        data=f"episodes of parking-v0 ({variant}) on training seeds, goals relabelled by HER ('future', 4)",
        limitations="Trained without walls unless --variant walls; the walls variant is only reported.",
    )
