"""Multi-process training with torch.distributed (DDP): gloo on CPU, nccl on CUDA.

Launch with ``deepapps train TASK --nproc N`` (which runs torchrun) or ``torchrun`` yourself;
inside the worker call :func:`setup` and wrap the model with :func:`wrap`. :func:`spawn`
starts N local processes without torchrun (tests, notebooks).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_info() -> DistInfo:
    """Rank and world size from the environment torchrun sets (1 process when unset)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def setup(device: str = "cpu") -> DistInfo:
    """Join the process group when launched with several processes; no-op for one."""
    info = env_info()
    if info.world_size <= 1:
        return info
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(info.local_rank)
    info.backend = backend
    return info


def teardown(sync: bool = True) -> None:
    """Leave the process group. ``sync``: all ranks first meet at a barrier, so none closes its
    connections while a peer still reads from them (gloo then aborts that peer: "terminate called
    without an active exception"). Pass ``sync=False`` on an error path, where a peer may be gone."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if sync:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: Any, device: str = "cpu") -> Any:
    """``DistributedDataParallel(model)`` when in a process group, else the model unchanged."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.startswith("cuda"):
        index = int(os.environ.get("LOCAL_RANK", 0))
        return DistributedDataParallel(model, device_ids=[index])
    return DistributedDataParallel(model)


def all_reduce_mean(value: float) -> float:
    """Average a Python float over every process (identity for one process)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item() / dist.get_world_size())


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn_entry(local_rank: int, fn, nprocs: int, port: int, args: tuple) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(nprocs),
    )
    fn(*args)


def spawn(fn, nprocs: int, *args: Any) -> None:
    """Run ``fn(*args)`` in ``nprocs`` local processes joined into one group (torchrun-style env)."""
    import torch.multiprocessing as mp

    mp.spawn(_spawn_entry, args=(fn, nprocs, free_port(), args), nprocs=nprocs, join=True)


def torchrun(argv: list[str], nproc: int) -> int:
    """Re-run ``deepapps <argv>`` under torchrun with ``nproc`` local processes; returns the exit code."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "deepapps.cli",
        *argv,
    ]
    return subprocess.call(cmd)
