"""CPU thread count for torch (and the BLAS underneath)."""

from __future__ import annotations

import os


def thread_count(*fallback_vars: str) -> int:
    """The CPU thread count to use: ``DEEPAPPS_THREADS``, else the first of ``fallback_vars``
    set to a positive integer (e.g. ``OMP_NUM_THREADS``), else every core this process may use
    (its CPU affinity, which containers and ``taskset`` narrow, not the machine's core count)."""
    for var in ("DEEPAPPS_THREADS", *fallback_vars):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return usable_cores()


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def set_threads(n: int | None = None) -> int:
    """Use ``n`` CPU threads (default: :func:`thread_count`); return the count."""
    import torch

    if n is None:
        n = thread_count()
    n = max(1, int(n))
    torch.set_num_threads(n)
    return n
