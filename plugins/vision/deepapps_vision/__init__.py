"""deepapps_vision: face recognition, object detection and segmentation.

Its hooks live in :mod:`deepapps_vision.plugin`, which gathers the registrations of
each sub-domain (``detection``, ``faces``, ...). Importing this package is light: the
public API below is imported on first use::

    from deepapps_vision import Detector, FaceRecognizer, Gallery
"""

from __future__ import annotations

from deepapps.lazy import lazy_exports

__all__ = ["Detector", "Face", "FaceRecognizer", "Gallery", "Verification", "generate_scenes"]

_LAZY = {
    "Detector": "deepapps_vision.detection.detector:Detector",
    "Face": "deepapps_vision.faces.recognizer:Face",
    "FaceRecognizer": "deepapps_vision.faces.recognizer:FaceRecognizer",
    "Verification": "deepapps_vision.faces.recognizer:Verification",
    "Gallery": "deepapps_vision.faces.gallery:Gallery",
    "generate_scenes": "deepapps_vision.scenes:generate",
}

__getattr__ = lazy_exports(__name__, _LAZY)
