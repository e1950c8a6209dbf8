"""Go's network update under DDP: two CPU processes (gloo) stay identical step after step."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from deepapps.runtime import distributed


def _replay(size: int = 5, count: int = 96, seed: int = 3):
    from deepapps_games.go.selfplay import Samples
    from deepapps_games.go.train import Replay

    rng = np.random.default_rng(seed)
    n2 = size * size
    pi = rng.random((count, n2 + 1)).astype(np.float32)
    samples = Samples(
        rng.integers(0, 2, size=(count, 10, size, size), dtype=np.uint8),
        pi / pi.sum(1, keepdims=True),
        rng.choice([-1.0, 1.0], size=count).astype(np.float32),
        rng.choice([-1, 1], size=(count, n2)).astype(np.int8),
    )
    replay = Replay(10_000)
    replay.add(samples)
    return replay, samples


def _gather(value: torch.Tensor) -> list[torch.Tensor]:
    import torch.distributed as dist

    out = [torch.zeros_like(value) for _ in range(dist.get_world_size())]
    dist.all_gather(out, value)
    return out


def _ddp_worker(out_dir: str) -> None:
    from deepapps_games.go.net import GoNet, NetConfig
    from deepapps_games.go.train import Learner, TrainConfig, _broadcast_round, _Round

    info = distributed.setup("cpu")
    torch.set_num_threads(1)
    torch.manual_seed(100 + info.rank)  # different random weights on each rank before DDP
    net = GoNet(NetConfig(blocks=1, channels=8))

    def flat() -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    before = _gather(flat())
    learner = Learner(net, TrainConfig(size=5, blocks=1, channels=8, batch_size=8, lr=1e-2))
    start = flat().clone()
    report = {"differ_before_ddp": not torch.equal(*before), "equal_after_wrap": torch.equal(*_gather(start))}
    replay, samples = _replay()
    rng = np.random.default_rng(7)  # the same seed on both ranks: one global batch, a shard each
    report["steps"] = []
    for _ in range(4):
        losses = learner.step(replay, rng)
        weights = _gather(flat())
        report["steps"].append(
            {
                "equal": torch.equal(weights[0], weights[1]),
                "moved": float((weights[0] - start).abs().max()),
                "policy_losses": [float(t) for t in _gather(torch.tensor([losses["policy_loss"]]))],
            }
        )
    # rank 0's self-play positions reach every rank's replay buffer intact
    run = SimpleNamespace(learner=learner, cfg=SimpleNamespace(size=5), is_main=info.rank == 0)
    got = _broadcast_round(run, _Round(stop=False, steps=3, samples=samples) if info.rank == 0 else None)
    report["broadcast"] = {
        "steps": got.steps,
        "stop": got.stop,
        "same": all(
            np.array_equal(getattr(got.samples, k), getattr(samples, k)) for k in ("x", "pi", "z", "own")
        ),
        "dtypes": [str(getattr(got.samples, k).dtype) for k in ("x", "pi", "z", "own")],
    }
    (Path(out_dir) / f"rank{info.rank}.json").write_text(json.dumps(report))
    distributed.teardown()


def test_go_network_update_with_ddp_keeps_ranks_identical(tmp_path):
    distributed.spawn(_ddp_worker, 2, str(tmp_path))
    for rank in (0, 1):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert report["differ_before_ddp"] and report["equal_after_wrap"]  # DDP broadcast rank 0's weights
        moved = [s["moved"] for s in report["steps"]]
        assert all(s["equal"] for s in report["steps"])  # identical after every step
        assert all(m > 0 for m in moved) and moved[-1] > moved[0]
        # each rank trained on its own shard of the batch: their losses differ
        assert all(s["policy_losses"][0] != s["policy_losses"][1] for s in report["steps"])
        assert report["broadcast"] == {
            "steps": 3,
            "stop": False,
            "same": True,
            "dtypes": ["uint8", "float32", "float32", "int8"],
        }
