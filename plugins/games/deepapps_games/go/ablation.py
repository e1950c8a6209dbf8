"""Do KataGo's two efficiency ideas help here? Two controlled measurements.

Ownership head (cheap, on a run's own self-play data): two fresh networks of the same size train
on the same replay positions (same order, same augmentation draws, same steps), one with the
ownership loss, one without. Both are scored on a held-out tail of the buffer (later games, never
trained on) by value MSE and policy cross-entropy.

``python -m deepapps_games.go.ablation runs/go7/replay.safetensors --steps 600``

Playout cap randomisation (two training runs at equal wall time): run A uses PCR (a quarter of
moves get a full, recorded search of ``visits``; the rest a fast, unrecorded one of
``fast_visits``); run B records every move at the same average search cost
(``0.25 * 96 + 0.75 * 24 = 42`` visits). Same seed, network size, workers and minutes. The two
final networks then play each other (alternating colours) and the win rate with its 95% CI is
the answer.

``python -m deepapps_games.go.ablation pcr --minutes 12 --out runs/pcr --games 100``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def run(
    replay_path: str,
    steps: int = 600,
    batch: int = 128,
    seeds: tuple[int, ...] = (0, 1),
    holdout: float = 0.2,
    blocks: int = 4,
    channels: int = 32,
    lr: float = 2e-3,
) -> dict:
    from deepapps.runtime import load_checkpoint, set_threads

    from .selfplay import Samples

    set_threads(1)
    t, _ = load_checkpoint(replay_path)
    data = Samples(t["x"].numpy(), t["pi"].numpy(), t["z"].numpy(), t["own"].numpy())
    cut = int(len(data) * (1 - holdout))
    train = Samples(data.x[:cut], data.pi[:cut], data.z[:cut], data.own[:cut])
    test = Samples(data.x[cut:], data.pi[cut:], data.z[cut:], data.own[cut:])
    results: dict = {"train_positions": cut, "test_positions": len(test), "steps": steps, "batch": batch,
                     "runs": []}
    t0 = time.perf_counter()
    for seed in seeds:
        for own_w in (1.0, 0.0):
            net = _fit(train, seed, own_w, steps, batch, blocks, channels, lr)
            results["runs"].append({"seed": seed, "ownership": own_w > 0, **_test_metrics(net, test)})
    for flag in (True, False):
        rs = [r for r in results["runs"] if r["ownership"] == flag]
        key = "with_ownership" if flag else "without_ownership"
        results[key] = {
            k: round(float(np.mean([r[k] for r in rs])), 4)
            for k in ("test_value_mse", "test_policy_ce", "test_outcome_accuracy")
        }
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def _fit(train, seed: int, own_w: float, steps: int, batch: int, blocks: int, channels: int, lr: float):
    """A fresh network trained on ``train`` (ownership head only when ``own_w`` > 0)."""
    import torch

    from deepapps.runtime import seed_everything

    from .net import GoNet, NetConfig
    from .selfplay import Samples
    from .train import train_step

    seed_everything(seed)
    net = GoNet(NetConfig(blocks, channels, ownership=own_w > 0))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.integers(0, len(train), size=batch)
        train_step(net, opt, Samples(train.x[idx], train.pi[idx], train.z[idx], train.own[idx]), rng, own_w)
    return net


def _test_metrics(net, test) -> dict[str, float]:
    """Value MSE, policy cross-entropy and outcome accuracy on the held-out positions."""
    import torch
    import torch.nn.functional as F

    net.eval()
    with torch.inference_mode():
        logits, v, _ = net(torch.from_numpy(test.x.astype(np.float32)))
        z = torch.from_numpy(test.z)
        vmse = float(F.mse_loss(v, z))
        pce = float(-(torch.from_numpy(test.pi) * F.log_softmax(logits, 1)).sum(1).mean())
        sign_acc = float(((v > 0) == (z > 0)).float().mean())
    return {"test_value_mse": round(vmse, 4), "test_policy_ce": round(pce, 4),
            "test_outcome_accuracy": round(sign_acc, 4)}


def run_pcr(
    out_dir: str = "runs/pcr",
    minutes: float = 12.0,
    games: int = 100,
    visits: int = 64,
    size: int = 7,
    seed: int = 1,
    workers: int = 2,
    full_visits: int = 96,
    fast_visits: int = 24,
    full_prob: float = 0.25,
) -> dict:
    """Train with and without playout cap randomisation for ``minutes`` each, then play them."""
    from pathlib import Path

    from .net import Evaluator, load_net
    from .selfplay import MCTSPlayer, match
    from .train import TrainConfig, run_training

    mean_visits = round(full_prob * full_visits + (1 - full_prob) * fast_visits)
    common = dict(size=size, minutes=minutes, workers=workers, blocks=4, channels=32, seed=seed)
    arms = {
        "pcr": TrainConfig(**common, visits=full_visits, fast_visits=fast_visits, full_prob=full_prob),
        "no_pcr": TrainConfig(**common, visits=mean_visits, fast_visits=mean_visits, full_prob=1.0),
    }
    out = Path(out_dir)
    results: dict = {"minutes_each": minutes, "mean_visits_per_move": mean_visits, "arms": {}}
    for name, cfg in arms.items():
        summary = run_training(cfg, out / name)
        results["arms"][name] = {
            "visits": cfg.visits,
            "fast_visits": cfg.fast_visits,
            "full_prob": cfg.full_prob,
            **{k: summary[k] for k in ("games", "positions", "steps", "generation", "minutes")},
            "last": summary["last"],
        }
    nets = {name: load_net(out / name / "model.safetensors")[0] for name in arms}
    a = MCTSPlayer(Evaluator(nets["pcr"]), visits=visits, temperature_moves=4, seed=seed, name="pcr")
    b = MCTSPlayer(
        Evaluator(nets["no_pcr"]), visits=visits, temperature_moves=4, seed=seed + 1, name="no_pcr"
    )
    rep = match(a, b, games, size, arms["pcr"].komi, progress_desc="pcr vs no_pcr")
    results["match"] = {
        "games": games,
        "visits": visits,
        "pcr_wins": rep["wins"],
        "pcr_win_rate": rep["win_rate"],
        "ci95": rep["ci95"],
        "pcr_wins_as_black": rep["wins_as_black"],
        "pcr_wins_as_white": rep["wins_as_white"],
    }
    return results


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "pcr":
        ap = argparse.ArgumentParser(
            description="playout cap randomisation: two equal-time runs, then a match"
        )
        ap.add_argument("pcr")
        ap.add_argument("--out", default="runs/pcr")
        ap.add_argument("--minutes", type=float, default=12.0)
        ap.add_argument("--games", type=int, default=100)
        ap.add_argument("--visits", type=int, default=64)
        ap.add_argument("--seed", type=int, default=1)
        ap.add_argument("--workers", type=int, default=2)
        a = ap.parse_args()
        res = run_pcr(a.out, a.minutes, a.games, a.visits, seed=a.seed, workers=a.workers)
        print(json.dumps(res, indent=2))
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("replay")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seeds", type=int, default=2)
    a = ap.parse_args()
    print(json.dumps(run(a.replay, steps=a.steps, seeds=tuple(range(a.seeds))), indent=2))


if __name__ == "__main__":
    main()
