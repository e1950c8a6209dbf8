"""``deepapps train warehouse``: one policy for all robots (parameter sharing), trained with PPO.

Every robot's experience trains the same network. Training starts with a short imitation phase
(behaviour cloning of the scripted baseline, so robots first learn to follow shortest paths),
then PPO improves on it with the environment's rewards (deliveries, picks, collisions, progress).
Episodes use seeds below 10,000; evaluation uses seeds from 10,000 up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .env import WarehouseEnv
from .policy import build_net, save_policy
from .scripted import ScriptedPolicy

TRAIN_SEED_LIMIT = 10_000


def _envs(n: int, robots: int, seed: int) -> list[WarehouseEnv]:
    envs = [WarehouseEnv(n_robots=robots) for _ in range(n)]
    for k, env in enumerate(envs):
        env.reset(seed=(seed * 997 + k) % TRAIN_SEED_LIMIT)
    return envs


def imitation(net, robots: int, samples: int, seed: int, epochs: int = 4) -> float:
    """Behaviour cloning of the scripted policy; returns the final accuracy on its own samples."""
    import torch

    env, teacher = WarehouseEnv(n_robots=robots), ScriptedPolicy(seed)
    xs, ys = [], []
    episode = 0
    while len(xs) < samples:
        obs, _ = env.reset(seed=(seed * 7919 + episode) % TRAIN_SEED_LIMIT)
        teacher.reset()
        episode += 1
        while env.agents and len(xs) < samples:
            act = teacher.act(obs)
            for a in obs:
                xs.append(obs[a])
                ys.append(act[a])
            obs, *_ = env.step(act)
    x, y = torch.as_tensor(np.stack(xs)), torch.as_tensor(np.array(ys))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(256):
            logits, _ = net(x[idx])
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((net(x)[0].argmax(-1) == y).float().mean())


def rollout(net, envs: list[WarehouseEnv], obs_list: list[dict], horizon: int, gen) -> dict[str, Any]:
    """``horizon`` steps of every env; per robot slot: obs, actions, log-probs, values, rewards, ends."""
    import torch

    n_agents = envs[0].n_robots
    slots = len(envs) * n_agents
    buf = {k: [] for k in ("obs", "act", "logp", "val", "rew", "done")}
    finished: list[dict[str, int]] = []
    for _ in range(horizon):
        x = torch.as_tensor(np.stack([o[a] for o in obs_list for a in envs[0].possible_agents]))
        with torch.no_grad():
            logits, value = net(x)
        dist = torch.distributions.Categorical(logits=logits)
        action = torch.multinomial(dist.probs, 1, generator=gen).squeeze(-1)
        buf["obs"].append(x)
        buf["act"].append(action)
        buf["logp"].append(dist.log_prob(action))
        buf["val"].append(value)
        rewards, dones = np.zeros(slots, dtype=np.float32), np.zeros(slots, dtype=np.float32)
        acts = action.numpy()
        for k, env in enumerate(envs):
            names = env.possible_agents
            step = {a: int(acts[k * n_agents + j]) for j, a in enumerate(names)}
            obs, rew, _, trunc, _ = env.step(step)
            for j, a in enumerate(names):
                rewards[k * n_agents + j] = rew[a]
                dones[k * n_agents + j] = float(trunc[a])
            if not env.agents:
                finished.append(dict(env.stats))
                obs, _ = env.reset(seed=int(env.rng.integers(TRAIN_SEED_LIMIT)))
            obs_list[k] = obs
        buf["rew"].append(torch.as_tensor(rewards))
        buf["done"].append(torch.as_tensor(dones))
    x = torch.as_tensor(np.stack([o[a] for o in obs_list for a in envs[0].possible_agents]))
    with torch.no_grad():
        _, last_value = net(x)
    out = {k: torch.stack(v) for k, v in buf.items()}
    out["last_value"] = last_value
    out["episodes"] = finished
    return out


def advantages(batch: dict, gamma: float, lam: float):
    """Generalised advantage estimation per robot slot; truncation bootstraps from the value."""
    import torch

    rew, val, done = batch["rew"], batch["val"], batch["done"]
    horizon = rew.shape[0]
    adv = torch.zeros_like(rew)
    last = torch.zeros_like(rew[0])
    next_value = batch["last_value"]
    for t in reversed(range(horizon)):
        # at a truncation the next state belongs to a new episode: bootstrap with this state's value
        nv = torch.where(done[t] > 0, val[t], next_value)
        delta = rew[t] + gamma * nv - val[t]
        last = delta + gamma * lam * (1.0 - done[t]) * last
        adv[t] = last
        next_value = val[t]
    return adv, adv + val


def ppo_update(net, opt, batch: dict, adv, ret, epochs: int, minibatch: int, clip: float, ent: float) -> dict:
    import torch

    obs = batch["obs"].reshape(-1, batch["obs"].shape[-1])
    act, old_logp = batch["act"].reshape(-1), batch["logp"].reshape(-1)
    adv, ret = adv.reshape(-1), ret.reshape(-1)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    stats = {}
    for _ in range(epochs):
        for idx in torch.randperm(len(obs)).split(minibatch):
            logits, value = net(obs[idx])
            dist = torch.distributions.Categorical(logits=logits)
            ratio = (dist.log_prob(act[idx]) - old_logp[idx]).exp()
            pg = -torch.min(ratio * adv[idx], ratio.clamp(1 - clip, 1 + clip) * adv[idx]).mean()
            vloss = 0.5 * (value - ret[idx]).pow(2).mean()
            entropy = dist.entropy().mean()
            loss = pg + 0.5 * vloss - ent * entropy
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            opt.step()
            stats = {"policy_loss": pg.item(), "value_loss": vloss.item(), "entropy": entropy.item()}
    return stats


def _ppo(
    net, pool: list[WarehouseEnv], updates: int, horizon: int, lr: float, seed: int, log, progress: bool
):
    """``updates`` rounds of rollout + PPO update on the shared network, one metrics row each."""
    import torch

    from deepapps.runtime.progress import progress as bar

    robots = pool[0].n_robots
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    obs_list = [env._observations() for env in pool]
    gen = torch.Generator().manual_seed(seed)
    recent: list[dict] = []
    pbar = bar(total=updates, desc="warehouse PPO", disable=not progress)
    for update in range(1, updates + 1):
        batch = rollout(net, pool, obs_list, horizon, gen)
        adv, ret = advantages(batch, gamma=0.97, lam=0.95)
        stats = ppo_update(net, opt, batch, adv, ret, epochs=4, minibatch=512, clip=0.2, ent=0.01)
        recent = (recent + batch["episodes"])[-8:]
        row = {
            "update": update,
            "robot_steps": update * len(pool) * robots * horizon,
            "mean_reward": round(float(batch["rew"].mean()), 4),
            **{k: round(v, 4) for k, v in stats.items()},
        }
        if recent:
            row["deliveries_per_episode"] = round(float(np.mean([e["deliveries"] for e in recent])), 2)
            row["collisions_per_episode"] = round(float(np.mean([e["collisions"] for e in recent])), 2)
        log.log(**row)
        pbar.update(1)
    pbar.close()


def train(
    model,
    dataset: str | None,
    out_dir: Path,
    device: str,
    precision: str,
    robots: int,
    steps: int,
    imitation_samples: int,
    envs: int,
    horizon: int,
    lr: float,
    seed: int,
    progress: bool,
) -> dict[str, Any]:
    """Imitation warm start, then PPO for ``steps`` robot-steps; writes model.safetensors, metrics, plot."""
    from deepapps.errors import InputError
    from deepapps.runtime.seeding import seed_everything
    from deepapps.runtime.threads import set_threads
    from deepapps.runtime.training import MetricsLog

    if model is not None:
        raise InputError("warehouse trains its policy from scratch; leave out --model")
    seed_everything(seed)
    set_threads()
    out = Path(out_dir)
    log = MetricsLog(out)
    t0 = time.perf_counter()
    net = build_net()
    bc_acc = imitation(net, robots, imitation_samples, seed) if imitation_samples else None
    updates = max(1, steps // (envs * robots * horizon))
    _ppo(net, _envs(envs, robots, seed), updates, horizon, lr, seed, log, progress)
    seconds = time.perf_counter() - t0
    path = save_policy(
        net,
        out / "model.safetensors",
        {
            "robots": robots,
            "robot_steps": updates * envs * robots * horizon,
            "imitation_samples": imitation_samples,
            "imitation_accuracy": bc_acc,
            "seed": seed,
            "lr": lr,
            "seconds": round(seconds, 1),
        },
    )
    log.plot(x="update", title="warehouse: shared policy (PPO)")
    return {
        "model": str(path),
        "updates": updates,
        "robot_steps": updates * envs * robots * horizon,
        "imitation_accuracy": bc_acc,
        "last": log.rows[-1] if log.rows else {},
        "seconds": round(seconds, 1),
        "metrics": str(out / "metrics.jsonl"),
        "plot": str(out / "metrics.png"),
    }
