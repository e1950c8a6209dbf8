"""Checkpoints: safetensors tensors plus JSON metadata, written atomically.

Never unpickles: ``.safetensors`` holds only tensors, and ``load_torch_file`` uses
``weights_only=True`` for the ``.pt`` files users bring. A truncated or corrupt file
raises :class:`CheckpointError` naming the file and what to do; an existing file is
only replaced once the new one is completely written.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

METADATA_KEY = "deepapps"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync it, rename it over ``path``, fsync the folder.

    A crash leaves either the old file or the new one, never a mix; the folder's fsync makes the
    rename itself durable. The temp file is created with the normal umask-derived permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows: folders cannot be opened this way
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(
    path: str | os.PathLike, tensors: dict[str, Any], metadata: dict[str, Any] | None = None
) -> Path:
    """Save a state dict as safetensors with ``metadata`` (any JSON) under one key."""
    from safetensors.torch import save

    try:
        clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        meta = {METADATA_KEY: json.dumps(metadata or {}, sort_keys=True)}
        blob = save(clean, metadata=meta)
    except Exception as exc:  # shared storage, non-tensors...
        raise CheckpointError(f"cannot save checkpoint {path}: {exc}") from exc
    return atomic_write_bytes(path, blob)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a safetensors checkpoint, without loading tensors."""
    path = Path(path)
    _check_exists(path)
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get(METADATA_KEY, "{}")
    except Exception as exc:
        raise _corrupt(path, exc) from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"checkpoint {path} has unreadable metadata ({exc}); re-save or re-pull it"
        ) from exc


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Load ``(tensors, metadata)`` from a safetensors file, with a clear error when it is damaged."""
    path = Path(path)
    _check_exists(path)
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path), device=device)
    except Exception as exc:
        raise _corrupt(path, exc) from exc
    return tensors, metadata


def load_torch_file(path: str | os.PathLike, device: str = "cpu") -> Any:
    """Load a user's ``.pt``/``.pth`` with ``weights_only=True``: tensors and plain containers, no code."""
    path = Path(path)
    _check_exists(path)
    import torch

    try:
        return torch.load(str(path), map_location=device, weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot load {path} safely: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}. "
            "deepapps never unpickles arbitrary objects; convert the file to safetensors, "
            "or load it with the library that made it if you trust it"
        ) from exc


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path or run `deepapps pull`")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; pass the .safetensors file inside it")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); the download or save was interrupted")


def _corrupt(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {str(exc)[:200]}); "
        "delete it and re-create it (`deepapps pull MODEL` or `deepapps train`)"
    )
