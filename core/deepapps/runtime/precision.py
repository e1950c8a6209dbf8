"""Precision: one name for each dtype and an autocast that is a no-op where it cannot help."""

from __future__ import annotations

import contextlib

from ..errors import DeepAppsError

_ALIASES = {
    "fp32": "float32",
    "float32": "float32",
    "32": "float32",
    "fp16": "float16",
    "half": "float16",
    "float16": "float16",
    "16": "float16",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
}


def resolve_dtype(precision: str, device: str = "cpu"):
    """``auto`` -> bf16 on CUDA with bf16 support, fp32 elsewhere; else the named dtype."""
    import torch

    p = str(precision).lower()
    if p == "auto":
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if p not in _ALIASES:
        raise DeepAppsError(f"unknown precision {precision!r}: use auto, fp32, fp16 or bf16")
    return getattr(torch, _ALIASES[p])


@contextlib.contextmanager
def autocast(device: str = "cpu", precision: str = "auto"):
    """Mixed precision for forward passes; plain fp32 when the dtype is float32."""
    import torch

    dtype = resolve_dtype(precision, device)
    if dtype == torch.float32:
        yield
        return
    device_type = device.split(":")[0]
    with torch.autocast(device_type=device_type, dtype=dtype):
        yield


def inference_mode():
    """``torch.inference_mode()``, imported lazily."""
    import torch

    return torch.inference_mode()


def select_precision(requested: str | None, device: str, supported: tuple[str, ...] = ("fp32",)) -> str:
    """The precision a task runs at: ``auto`` -> bf16 on a bf16-capable CUDA device when the task
    supports it, else fp32 (or the task's first precision); an explicit one must be supported."""
    p = (requested or "auto").lower()
    if p == "auto":
        if "bf16" in supported and device.startswith("cuda"):
            import torch

            if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
                return "bf16"
        return "fp32" if "fp32" in supported else supported[0]
    canonical = {"float32": "fp32", "32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}.get(p, p)
    if canonical not in supported:
        raise DeepAppsError(
            f"precision {requested!r} is not supported by this task; use auto or one of: {', '.join(supported)}"
        )
    return canonical
