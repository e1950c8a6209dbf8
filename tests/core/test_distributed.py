"""The torchrun launch path with 2 CPU processes (gloo). Data-parallel training itself is tested on
the task that uses it: tests/games/test_go_distributed.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap


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
