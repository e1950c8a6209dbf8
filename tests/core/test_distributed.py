"""Distributed training with 2 CPU processes (gloo): spawn, and torchrun through the CLI's launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import torch

from deepapps.runtime import distributed


def _regression_dataset():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return torch.utils.data.TensorDataset(x, y)


def _worker(out_dir: str) -> None:
    from deepapps.runtime.training import fit

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    result = fit(
        model,
        _regression_dataset(),
        torch.nn.functional.mse_loss,
        epochs=8,
        batch_size=32,
        lr=0.05,
        out_dir=out_dir,
        show_progress=False,
    )
    rank = distributed.env_info().rank
    torch.save(
        {k: v.detach().clone() for k, v in model.state_dict().items()},
        os.path.join(out_dir, f"rank{rank}.pt"),
    )
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump({"world": result.world_size, "history": result.history}, fh)
    distributed.teardown()


def test_ddp_two_cpu_processes_stay_in_sync(tmp_path):
    distributed.spawn(_worker, 2, str(tmp_path))
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key in a:
        assert torch.allclose(a[key], b[key]), key  # DDP all-reduced every step
    info = json.loads((tmp_path / "rank0.json").read_text())
    assert info["world"] == 2
    losses = [row["train_loss"] for row in info["history"]]
    assert losses[-1] < losses[0] * 0.2
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "metrics.png").exists()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 8


def test_torchrun_launch(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, torch
            from deepapps.runtime import distributed
            info = distributed.setup("cpu")
            value = distributed.all_reduce_mean(float(info.rank))
            print(f"rank={info.rank} world={info.world_size} mean={value}")
            distributed.teardown()
            """
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "world=2 mean=0.5" in out.stdout
