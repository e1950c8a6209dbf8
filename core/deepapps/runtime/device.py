"""Device choice, once, in one place: ``auto`` -> cuda -> mps -> cpu."""

from __future__ import annotations

import re

from ..errors import DeviceError

_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?|\d+)$")


def select_device(device: str | int | None = "auto") -> str:
    """Validate ``device`` and return a torch device string that exists on this machine.

    ``"auto"`` (or None/"") picks cuda, then mps, then cpu. ``"0"`` means ``cuda:0``.
    """
    if device is None or device == "":
        device = "auto"
    text = str(device).strip().lower()
    if not _PATTERN.match(text):
        raise DeviceError(
            f"invalid device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' (N = GPU index) or 'mps'"
        )
    if text.isdigit():
        text = f"cuda:{text}"
    if text == "cpu":
        return "cpu"
    import torch

    if text == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {device!r} requested but CUDA is not available here; use 'cpu' or 'auto'"
            )
        index = int(text.split(":")[1]) if ":" in text else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(
                f"device {device!r} requested but only {count} CUDA device(s) exist (0..{count - 1})"
            )
        return text
    if text == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError(
                "device 'mps' requested but Apple MPS is not available here; use 'cpu' or 'auto'"
            )
        return "mps"
    raise DeviceError(f"invalid device {device!r}")  # pragma: no cover - pattern guards this
