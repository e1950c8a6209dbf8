"""The ``lfw-subset`` dataset: scikit-image's 100 LFW faces + 100 non-faces (25x25 grayscale)."""

from __future__ import annotations

import numpy as np

from deepapps import InputError


def load_lfw_subset(split: str = "test") -> dict[str, np.ndarray]:
    """``{"images": (200, 25, 25) uint8, "labels": (200,) 1 = face, 0 = non-face}``.

    scikit-image ships it (``skimage.data.lfw_subset``): the first 100 are LFW face crops, the last
    100 random non-face patches. It has no identity labels, so it serves detection and robustness
    checks, not LFW's verification protocol.
    """
    if split != "test":
        raise InputError(f"lfw-subset has only the 'test' split, not {split!r}")
    from skimage.data import lfw_subset

    images = np.clip(np.asarray(lfw_subset()) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    labels = np.r_[np.ones(100, dtype=np.int64), np.zeros(100, dtype=np.int64)]
    return {"images": images, "labels": labels}


def upsample_gray(image: np.ndarray, size: int = 100) -> np.ndarray:
    """A 25x25 grayscale crop as a ``size`` x ``size`` RGB uint8 image (bicubic)."""
    import cv2

    big = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.dstack([big] * 3))
