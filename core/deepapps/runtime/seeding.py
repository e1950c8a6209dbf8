"""Seeding for reproducible runs."""

from __future__ import annotations

import os
import random


def seed_everything(seed: int, deterministic: bool = False) -> int:
    """Seed python, numpy and torch (all devices); return the seed."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed
