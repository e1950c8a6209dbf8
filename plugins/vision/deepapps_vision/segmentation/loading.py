"""Loading a SAM from what the core resolved: a bundled/pulled safetensors file or a user's checkpoint.

Official ``sam_vit_b/l/h_*.pth`` files are plain state dicts saved with ``torch.save``. They are read
once with ``torch.load(weights_only=True)`` (tensors only, never code), checked against the
architecture their shapes describe, and written as safetensors into the deepapps models folder;
later loads read that file. Safetensors files made by deepapps carry their architecture in the
metadata; others have it read back from the tensor shapes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from deepapps.errors import CheckpointError, InputError, ModelNotAvailableError
from deepapps.resolution import ModelRef

from .arch import SamArch, arch_from_state_dict, build_sam

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
FORMAT = "deepapps-sam-v1"


def converted_path(source: Path) -> Path:
    """Where the safetensors copy of a user's checkpoint lives (keyed by path, size and mtime)."""
    from deepapps.runtime.home import models_dir

    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return models_dir() / "segmentation-converted" / f"{source.stem}-{key}.safetensors"


def _plain_state_dict(obj: Any, path: Path) -> dict[str, Any]:
    if isinstance(obj, dict) and not any(str(k).startswith("image_encoder.") for k in obj):
        for wrapper in ("model", "state_dict"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} holds no state dict of tensors; pass a sam_vit_b/l/h checkpoint")
    return obj


def convert_checkpoint(source: Path) -> Path:
    """The safetensors copy of a ``.pth`` SAM checkpoint, written on first use."""
    from deepapps.runtime.checkpoint import load_torch_file, save_checkpoint

    target = converted_path(source)
    if target.exists():
        return target
    state = _plain_state_dict(load_torch_file(source), source)
    arch = arch_from_state_dict(state)
    _load_into(build_sam(arch), state, source)  # refuse files that do not fit before writing anything
    meta = {"format": FORMAT, "arch": arch.to_dict(), "converted_from": source.name}
    return save_checkpoint(target, state, meta)


def _load_into(sam: Any, state: dict[str, Any], path: Path) -> Any:
    result = sam.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        missing = ", ".join(result.missing_keys[:3])
        extra = ", ".join(result.unexpected_keys[:3])
        raise CheckpointError(
            f"{path} does not fit a segment-anything SAM (missing: {missing or '-'}; unexpected: {extra or '-'})"
        )
    return sam


def load_sam(model: ModelRef, device: str = "cpu") -> tuple[Any, SamArch, dict[str, Any]]:
    """``(Sam in eval mode on device, its architecture, checkpoint metadata)`` for a resolved model."""
    from deepapps.runtime.checkpoint import load_checkpoint

    if model.kind == "hub":
        raise ModelNotAvailableError(
            f"segmentation loads local SAM checkpoints; {model.name!r} is a hub id. Download the .pth "
            "(e.g. sam_vit_b_01ec64.pth) and pass its path"
        )
    path = Path(model.path)
    if path.is_dir():
        raise InputError(f"model {path} is a folder; pass the .pth or .safetensors file inside it")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        path = convert_checkpoint(path)
    elif suffix != ".safetensors":
        raise InputError(
            f"model {path.name}: {suffix or 'no extension'} is not a SAM checkpoint; pass a .pth (official "
            "sam_vit_b/l/h) or .safetensors file"
        )
    state, meta = load_checkpoint(path)
    arch = SamArch.from_dict(meta["arch"]) if "arch" in meta else arch_from_state_dict(state)
    sam = _load_into(build_sam(arch), state, path)
    return sam.to(device).eval(), arch, meta
