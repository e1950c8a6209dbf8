"""Safe image input shared by every vision task.

Accepts a path, bytes, a PIL image or a numpy array; returns an RGB PIL image.
Everything a user or a client hands in is untrusted: whatever it is, the result is an
image or an :class:`InputError` saying what was wrong — missing files, text named
``.jpg``, truncated bytes, zero-size images, arrays of objects, strings, complex numbers
or NaNs, and decompression bombs (more than ``DEEPAPPS_MAX_PIXELS``, default 64 MP).
The pixel cap is checked on the header's size before any pixel is decoded, without
touching ``PIL.Image.MAX_IMAGE_PIXELS`` (a process-wide setting other threads rely on);
Pillow's own guard still applies beyond its limit. Converts grayscale, palette, RGBA
(onto white) and 16-bit images correctly. Video readers call :func:`check_frame_pixels`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ..errors import DeepAppsError, InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
DEFAULT_MAX_PIXELS = 64_000_000
_NUMERIC_KINDS = {"b": "bool", "i": "int", "u": "uint", "f": "float"}


def max_pixels() -> int:
    """The pixel cap: ``DEEPAPPS_MAX_PIXELS`` (an integer such as ``64000000`` or ``64e6``)."""
    raw = os.environ.get("DEEPAPPS_MAX_PIXELS", "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        value = 0
    if value <= 0:
        raise DeepAppsError(f"DEEPAPPS_MAX_PIXELS must be a positive number of pixels, got {raw!r}")
    return value


def _check_pixels(width: int, height: int, label: str) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"{label}: zero size ({width}x{height})")
    limit = max_pixels()
    if width * height > limit:
        raise InputError(
            f"{label}: {width}x{height} is {width * height / 1e6:.1f} MP, over the {limit / 1e6:.1f} MP limit "
            "(a decompression bomb guard); downscale it or raise DEEPAPPS_MAX_PIXELS"
        )


def check_frame_pixels(width: int, height: int, label: str = "video frame") -> None:
    """Refuse a video frame of zero size or over ``DEEPAPPS_MAX_PIXELS`` before decoding it."""
    _check_pixels(int(width), int(height), label)


def load_image(source: Any, name: str | None = None):
    """An RGB ``PIL.Image`` from ``source`` (path, bytes, PIL image, HxW[xC] numpy array)."""
    from PIL import Image

    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__)
    label = f"image {label}"
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, (str, os.PathLike)):
        img = _open(_checked_path(source, label), label)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise InputError(f"{label}: no bytes")
        img = _open(io.BytesIO(data), label)
    elif type(source).__module__.split(".")[0] == "numpy":
        return _from_array(source, label)
    else:
        raise InputError(
            f"{label}: unsupported input type {type(source).__name__}; pass a path, bytes, PIL image or numpy array"
        )
    return to_rgb(img, label)


def _checked_path(source: str | os.PathLike, label: str) -> Path:
    try:
        path = Path(source)
        if not path.exists():
            raise InputError(f"{label}: file not found")
        if path.is_dir():
            raise InputError(f"{label}: is a folder; pass the images inside it")
        if path.stat().st_size == 0:
            raise InputError(f"{label}: file is empty (0 bytes)")
    except (OSError, ValueError) as exc:  # a NUL byte in the name, a name too long, no permission
        raise InputError(f"{label}: cannot be read ({type(exc).__name__}: {exc})") from exc
    return path


def _open(fp: Any, label: str):
    """Open lazily, check the header's size against the cap, and only then decode the pixels."""
    from PIL import Image

    try:
        img = Image.open(fp)
        _check_pixels(*img.size, label)
        img.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{label}: too many pixels, over Pillow's decompression bomb limit ({exc}); downscale it"
        ) from exc
    except Exception as exc:  # UnidentifiedImageError, truncated data, OSError, plugin errors
        raise InputError(
            f"{label}: cannot be decoded ({type(exc).__name__}: {str(exc)[:200]}); is it really an image?"
        ) from exc
    return img


def to_rgb(img, label: str = "image"):
    """Convert any PIL mode to 8-bit RGB (16-bit scaled, alpha composited onto white)."""
    from PIL import Image

    w, h = img.size
    _check_pixels(w, h, label)
    mode = img.mode
    if mode == "RGB":
        return img
    try:
        if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
            import numpy as np

            return _from_array(np.asarray(img, dtype=np.float64), label)
        if mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return img.convert("RGB")
    except InputError:
        raise
    except Exception as exc:  # an unusual mode Pillow cannot convert, or pixels that fail to decode
        raise InputError(
            f"{label}: cannot convert its {mode} pixels to RGB ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc


def _from_array(arr, label: str):
    """HxW, HxWx1, HxWx3 or HxWx4 numbers: uint8 as is, floats in [0, 1] scaled, others rescaled."""
    import numpy as np
    from PIL import Image

    try:
        a = np.asarray(arr)
    except Exception as exc:
        raise InputError(f"{label}: not a usable array ({type(exc).__name__}: {exc})") from exc
    if a.dtype.kind not in _NUMERIC_KINDS:
        raise InputError(
            f"{label}: array of dtype {a.dtype} is not an image; pass numbers (uint8 0-255, or floats 0-1)"
        )
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise InputError(f"{label}: array of shape {a.shape} is not HxW, HxWx3 or HxWx4")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"{label}: zero size {a.shape}")
    _check_pixels(a.shape[1], a.shape[0], label)
    if a.dtype != np.uint8:
        a = _to_uint8(a, label)
    img = Image.fromarray(np.ascontiguousarray(a))
    return to_rgb(img, label)


def _to_uint8(a, label: str):
    import numpy as np

    if a.dtype.kind == "b":
        return a.astype(np.uint8) * 255  # a mask: white where True
    floats = a.dtype.kind == "f"
    a = a.astype(np.float64)
    if floats and not np.isfinite(a).all():
        raise InputError(f"{label}: array holds NaN or infinite values; replace them before passing it")
    top, bottom = float(a.max()), float(a.min())
    if floats and top <= 1.0 and bottom >= 0.0:
        a = a * 255.0
    elif top > 255:
        a = a / (65535.0 if top <= 65535 else top) * 255.0
    return np.clip(a, 0, 255).astype(np.uint8)


def iter_image_paths(folder: str | os.PathLike) -> list[Path]:
    """Image files in ``folder`` (sorted, non-recursive)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
