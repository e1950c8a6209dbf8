"""Shared runtime: device, precision, seeding, threads, checkpoints, home folder,
model pulling, progress and timing, images, and distributed training.

Every submodule imports torch lazily, inside the functions that need it.
"""

from .checkpoint import load_checkpoint, load_torch_file, save_checkpoint
from .device import select_device
from .home import cache_dir, home, models_dir
from .precision import autocast, resolve_dtype
from .progress import progress
from .seeding import seed_everything
from .threads import set_threads
from .timing import Timer

__all__ = [
    "Timer",
    "autocast",
    "cache_dir",
    "home",
    "load_checkpoint",
    "load_torch_file",
    "models_dir",
    "progress",
    "resolve_dtype",
    "save_checkpoint",
    "seed_everything",
    "select_device",
    "set_threads",
]
