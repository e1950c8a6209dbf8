"""CPU thread count for torch (and the BLAS underneath)."""

from __future__ import annotations

import os


def set_threads(n: int | None = None) -> int:
    """Use ``n`` CPU threads (default: DEEPAPPS_THREADS or every core); return the count."""
    import torch

    if n is None:
        n = int(os.environ.get("DEEPAPPS_THREADS", "0")) or (os.cpu_count() or 1)
    n = max(1, int(n))
    torch.set_num_threads(n)
    return n
