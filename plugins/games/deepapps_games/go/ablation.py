"""Does the ownership head help? A controlled, cheap measurement on a run's own self-play data.

Two fresh networks of the same size train on the same replay positions (same order, same
augmentation draws, same steps): one with the ownership loss, one without. Both are scored on a
held-out tail of the buffer (later games, never trained on) by value MSE and policy cross-entropy.

``python -m deepapps_games.go.ablation runs/go7/replay.safetensors --steps 600``
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
    import torch
    import torch.nn.functional as F

    from deepapps.runtime import load_checkpoint

    from .net import GoNet, NetConfig
    from .selfplay import Samples
    from .train import train_step

    torch.set_num_threads(1)
    t, _ = load_checkpoint(replay_path)
    data = Samples(t["x"].numpy(), t["pi"].numpy(), t["z"].numpy(), t["own"].numpy())
    cut = int(len(data) * (1 - holdout))
    train = Samples(data.x[:cut], data.pi[:cut], data.z[:cut], data.own[:cut])
    test = Samples(data.x[cut:], data.pi[cut:], data.z[cut:], data.own[cut:])
    results: dict = {
        "train_positions": cut,
        "test_positions": len(test),
        "steps": steps,
        "batch": batch,
        "runs": [],
    }
    t0 = time.perf_counter()
    for seed in seeds:
        for own_w in (1.0, 0.0):
            torch.manual_seed(seed)
            net = GoNet(NetConfig(blocks, channels, ownership=own_w > 0))
            opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
            rng = np.random.default_rng(seed)
            for _ in range(steps):
                idx = rng.integers(0, len(train), size=batch)
                s = Samples(train.x[idx], train.pi[idx], train.z[idx], train.own[idx])
                train_step(net, opt, s, rng, own_w)
            net.eval()
            with torch.inference_mode():
                logits, v, _ = net(torch.from_numpy(test.x.astype(np.float32)))
                vmse = float(F.mse_loss(v, torch.from_numpy(test.z)))
                pce = float(-(torch.from_numpy(test.pi) * F.log_softmax(logits, 1)).sum(1).mean())
                sign_acc = float(((v > 0) == (torch.from_numpy(test.z) > 0)).float().mean())
            results["runs"].append(
                {
                    "seed": seed,
                    "ownership": own_w > 0,
                    "test_value_mse": round(vmse, 4),
                    "test_policy_ce": round(pce, 4),
                    "test_outcome_accuracy": round(sign_acc, 4),
                }
            )
    for flag in (True, False):
        rs = [r for r in results["runs"] if r["ownership"] == flag]
        key = "with_ownership" if flag else "without_ownership"
        results[key] = {
            k: round(float(np.mean([r[k] for r in rs])), 4)
            for k in ("test_value_mse", "test_policy_ce", "test_outcome_accuracy")
        }
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("replay")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seeds", type=int, default=2)
    a = ap.parse_args()
    print(json.dumps(run(a.replay, steps=a.steps, seeds=tuple(range(a.seeds))), indent=2))


if __name__ == "__main__":
    main()
