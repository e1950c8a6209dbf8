"""Safe image input shared by every vision task.

Accepts a path, bytes, a PIL image or a numpy array; returns an RGB PIL image.
Refuses what it cannot use with an :class:`InputError` that says what was wrong:
missing files, text named ``.jpg``, truncated bytes, zero-size images and
decompression bombs (more than ``DEEPAPPS_MAX_PIXELS``, default 64 MP). Converts
grayscale, palette, RGBA (onto white) and 16-bit images correctly.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ..errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def max_pixels() -> int:
    return int(os.environ.get("DEEPAPPS_MAX_PIXELS", str(64_000_000)))


def load_image(source: Any, name: str | None = None):
    """An RGB ``PIL.Image`` from ``source`` (path, bytes, PIL image, HxW[xC] numpy array)."""
    from PIL import Image

    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__)
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"image {label}: file not found")
        if path.is_dir():
            raise InputError(f"image {label}: is a folder; pass the images inside it")
        if path.stat().st_size == 0:
            raise InputError(f"image {label}: file is empty (0 bytes)")
        img = _open(path, label)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InputError(f"image {label}: no bytes")
        img = _open(io.BytesIO(bytes(source)), label)
    elif type(source).__module__.startswith("numpy"):
        return _from_array(source, label)
    else:
        raise InputError(
            f"image {label}: unsupported input type {type(source).__name__}; pass a path, bytes, PIL image or numpy array"
        )
    return to_rgb(img, label)


def _open(fp: Any, label: str):
    from PIL import Image

    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels()
    try:
        img = Image.open(fp)
        w, h = img.size
        if w * h > max_pixels():
            raise InputError(
                f"image {label}: {w}x{h} is {w * h / 1e6:.0f} MP, over the {max_pixels() / 1e6:.0f} MP limit "
                "(a decompression bomb guard); downscale it or raise DEEPAPPS_MAX_PIXELS"
            )
        img.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"image {label}: too many pixels ({exc}); downscale it or raise DEEPAPPS_MAX_PIXELS"
        ) from exc
    except Exception as exc:  # UnidentifiedImageError, truncated data, OSError
        raise InputError(
            f"image {label}: cannot be decoded ({type(exc).__name__}: {exc}); is it really an image?"
        ) from exc
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    return img


def to_rgb(img, label: str = "image"):
    """Convert any PIL mode to 8-bit RGB (16-bit scaled, alpha composited onto white)."""
    from PIL import Image

    w, h = img.size
    if w == 0 or h == 0:
        raise InputError(f"image {label}: zero size ({w}x{h})")
    if w * h > max_pixels():
        raise InputError(
            f"image {label}: {w}x{h} is over the {max_pixels() / 1e6:.0f} MP limit; downscale it"
        )
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        return _from_array(arr, label)
    if mode in {"RGBA", "LA", "PA"} or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _from_array(arr, label: str):
    import numpy as np
    from PIL import Image

    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise InputError(f"image {label}: array of shape {a.shape} is not HxW, HxWx3 or HxWx4")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"image {label}: zero size {a.shape}")
    if a.shape[0] * a.shape[1] > max_pixels():
        raise InputError(
            f"image {label}: {a.shape[1]}x{a.shape[0]} is over the {max_pixels() / 1e6:.0f} MP limit"
        )
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if (
            a.dtype.kind == "f"
            and a.size
            and np.nanmax(a) <= 1.0
            and np.nanmin(a) >= 0.0
            and arr.dtype.kind == "f"
        ):
            a = a * 255.0
        elif a.size and np.nanmax(a) > 255:
            a = a / (65535.0 if np.nanmax(a) <= 65535 else np.nanmax(a)) * 255.0
        a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
    img = Image.fromarray(a)
    return to_rgb(img, label)


def iter_image_paths(folder: str | os.PathLike) -> list[Path]:
    """Image files in ``folder`` (sorted, non-recursive)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
