"""Face recognition with dlib's real models: detection, landmarks, verification, a SQLite gallery.

``from deepapps_vision.faces import FaceRecognizer, Gallery``. Importing this package is light:
the names are loaded on first use, so the plugin's registration never imports dlib or cv2.
"""

from __future__ import annotations

from deepapps.lazy import lazy_exports

__all__ = ["Face", "FaceRecognizer", "Gallery", "Verification"]

_LAZY = {
    "Face": "deepapps_vision.faces.recognizer",
    "FaceRecognizer": "deepapps_vision.faces.recognizer",
    "Verification": "deepapps_vision.faces.recognizer",
    "Gallery": "deepapps_vision.faces.gallery",
}

__getattr__ = lazy_exports(__name__, _LAZY)
