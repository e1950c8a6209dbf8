"""deepapps_vision: face recognition, object detection and segmentation.

Its hooks live in :mod:`deepapps_vision.plugin`, which gathers the registrations of
each sub-domain (``detection``, ``faces``, ...). Importing this package is light: the
public API below is imported on first use::

    from deepapps_vision import Detector, FaceRecognizer, Gallery
"""

from __future__ import annotations

from typing import Any

__all__ = ["Detector", "Face", "FaceRecognizer", "Gallery", "Verification", "generate_scenes"]

_LAZY = {
    "Detector": ("deepapps_vision.detection.detector", "Detector"),
    "Face": ("deepapps_vision.faces.recognizer", "Face"),
    "FaceRecognizer": ("deepapps_vision.faces.recognizer", "FaceRecognizer"),
    "Verification": ("deepapps_vision.faces.recognizer", "Verification"),
    "Gallery": ("deepapps_vision.faces.gallery", "Gallery"),
    "generate_scenes": ("deepapps_vision.scenes", "generate"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'deepapps_vision' has no attribute {name!r}")
