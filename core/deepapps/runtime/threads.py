"""CPU thread count for torch (and the BLAS underneath)."""

from __future__ import annotations

import os


def thread_count(*fallback_vars: str) -> int:
    """The CPU thread count to use: ``DEEPAPPS_THREADS``, else the first of ``fallback_vars``
    set to a positive integer (e.g. ``OMP_NUM_THREADS``), else every core."""
    for var in ("DEEPAPPS_THREADS", *fallback_vars):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def set_threads(n: int | None = None) -> int:
    """Use ``n`` CPU threads (default: :func:`thread_count`); return the count."""
    import torch

    if n is None:
        n = thread_count()
    n = max(1, int(n))
    torch.set_num_threads(n)
    return n
