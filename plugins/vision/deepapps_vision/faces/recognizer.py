"""FaceRecognizer: detect, align, embed and verify faces with dlib's real models.

>>> from deepapps_vision.faces import FaceRecognizer
>>> fr = FaceRecognizer()                     # HOG detector, 68 landmarks, dlib ResNet descriptor
>>> faces = fr.detect("photo.jpg")            # boxes, scores, landmarks, attributes
>>> fr.verify("a.jpg", "b.jpg").same          # distance < 0.6 (dlib's threshold)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepapps import InputError
from deepapps.options import check_options
from deepapps.runtime.images import load_image

from .attributes import face_attributes
from .models import Embedder, cnn_detector, hog_detector, load_embedder, shape_predictor
from .specs import DEFAULTS, DETECTORS, RECOGNIZER_OPTIONS, TASK

__all__ = ["DETECTORS", "Face", "FaceRecognizer", "Verification", "distance", "to_rgb_array"]


@dataclass
class Face:
    """One detected face. ``box`` is ``(x1, y1, x2, y2)`` in pixels of the input image."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray | None = field(default=None, repr=False)  # (5 or 68, 2) pixels
    attributes: dict[str, Any] = field(default_factory=dict)
    embedding: np.ndarray | None = field(default=None, repr=False)
    identity: str | None = None
    distance: float | None = None
    matches: list[Any] = field(default_factory=list)  # gallery Matches, nearest first (top_k)
    shape: Any = field(default=None, repr=False, compare=False)  # dlib full_object_detection

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    def to_dict(self, embedding: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "box": [int(v) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": None if self.landmarks is None else np.round(self.landmarks, 1).tolist(),
            "attributes": self.attributes,
            "identity": self.identity,
            "distance": None if self.distance is None else round(float(self.distance), 4),
            "matches": [m.to_dict() for m in self.matches],
        }
        if embedding and self.embedding is not None:
            out["embedding"] = [round(float(v), 6) for v in self.embedding]
        return out


@dataclass
class Verification:
    """The outcome of comparing the main face of two images."""

    distance: float | None
    same: bool
    threshold: float
    metric: str
    face_a: Face | None
    face_b: Face | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "distance": None if self.distance is None else round(float(self.distance), 4),
            "same": self.same,
            "threshold": self.threshold,
            "metric": self.metric,
            "face_a": None if self.face_a is None else self.face_a.to_dict(),
            "face_b": None if self.face_b is None else self.face_b.to_dict(),
            "reason": self.reason,
        }


def to_rgb_array(image: Any) -> np.ndarray:
    """Any image input (path, bytes, PIL, array) as a contiguous HxWx3 uint8 RGB array."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise InputError(f"image: zero size {image.shape}")
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(np.asarray(load_image(image), dtype=np.uint8))


def _wants_loading(model: Any) -> bool:
    """True for what the core resolves (None, a name, a path, a ModelSpec or ModelRef), False for an
    embedder object handed over ready."""
    from deepapps import ModelRef, ModelSpec

    return model is None or isinstance(model, (str, os.PathLike, ModelSpec, ModelRef))


def distance(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> float:
    """Euclidean or cosine distance between two embeddings."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if metric == "cosine":
        return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
    return float(np.linalg.norm(a - b))


class FaceRecognizer:
    """Detection (HOG or CNN/MMOD), 5/68-point landmarks, alignment, embedding and verification.

    ``detector``: ``"hog"`` (fast, frontal faces, ~80 px and larger per upsample step) or ``"cnn"``
    (dlib's MMOD CNN: more poses, much slower on CPU). ``upsample``: how many times the image is
    doubled before detection (finds smaller faces, costs ~4x per step). ``landmarks``: 68 (gives
    head pose and eye attributes) or 5. The values are checked against the task's declared options
    (``deepapps options face-recognition``), whose defaults these are. ``model``: the embedder, as
    anything ``deepapps run --model`` takes (a registered name, a ``ModelRef``, a dlib ``.dat``
    file; resolved by the core) or an object following
    :class:`~deepapps_vision.faces.models.Embedder`; default: the task's default model.
    """

    def __init__(
        self,
        model: Any = None,
        detector: str = DEFAULTS["detector"],
        landmarks: int = DEFAULTS["landmarks"],
        upsample: int = DEFAULTS["upsample"],
        min_score: float = DEFAULTS["min_score"],
        device: str = "cpu",
    ) -> None:
        given = {"detector": detector, "landmarks": landmarks, "upsample": upsample, "min_score": min_score}
        opts = check_options(RECOGNIZER_OPTIONS, given, "FaceRecognizer")
        self.detector_name = opts["detector"]
        self.landmark_points = opts["landmarks"]
        self.upsample = opts["upsample"]
        self.min_score = opts["min_score"]
        self.device = device
        self._model_ref = model
        self._embedder: Embedder | None = None if _wants_loading(model) else load_embedder(model)
        self._detector = hog_detector() if self.detector_name == "hog" else cnn_detector()
        self._predictor = shape_predictor(self.landmark_points)

    # models ------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        """The embedder, loaded on first use (detection alone never loads it)."""
        if self._embedder is None:
            from deepapps import resolve_model

            ref = resolve_model(TASK, self._model_ref)
            self._embedder = load_embedder(ref, self.device)
        return self._embedder

    @property
    def threshold(self) -> float:
        return float(self.embedder.threshold)

    @property
    def model_name(self) -> str:
        return str(self.embedder.name)

    # detection ---------------------------------------------------------------
    def _boxes(self, rgb: np.ndarray, upsample: int) -> list[tuple[Any, float]]:
        if self.detector_name == "hog":
            # scores under the SVM's own cut (0) are only returned when asked for
            rects, scores, _ = self._detector.run(rgb, upsample, min(0.0, self.min_score))
            return [(r, float(s)) for r, s in zip(rects, scores, strict=False) if s >= self.min_score]
        dets = self._detector(rgb, upsample)
        # MMOD confidences are on another scale (>0 means detected); keep every detection
        return [(d.rect, float(d.confidence)) for d in dets]

    def detect(
        self,
        image: Any,
        upsample: int | None = None,
        attributes: bool = True,
        boxes: list | None = None,
        scores: list[float] | None = None,
    ) -> list[Face]:
        """Faces in ``image``, largest first, with box, score, landmarks and (68 points) attributes.

        No face gives an empty list. ``boxes`` (x1, y1, x2, y2) skips detection and uses these boxes
        (with ``scores``, else 1.0).
        """
        import dlib

        rgb = to_rgb_array(image)
        h, w = rgb.shape[:2]
        if boxes is not None:
            scores = [1.0] * len(boxes) if scores is None else list(scores)
            found = [
                (dlib.rectangle(*[int(round(v)) for v in b]), float(s))
                for b, s in zip(boxes, scores, strict=True)
            ]
        else:
            found = self._boxes(rgb, self.upsample if upsample is None else int(upsample))
        faces = []
        for rect, score in found:
            shape = self._predictor(rgb, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            box = (max(0, rect.left()), max(0, rect.top()), min(w, rect.right()), min(h, rect.bottom()))
            face = Face(box=box, score=score, landmarks=pts, shape=shape)
            if attributes:
                face.attributes = face_attributes(pts, (w, h))
            faces.append(face)
        faces.sort(key=lambda f: f.width * f.height, reverse=True)
        return faces

    # alignment and embedding ---------------------------------------------------
    def align(self, image: Any, faces: list[Face] | None = None, size: int | None = None) -> list[np.ndarray]:
        """Aligned RGB chips (eyes level, face scaled to the embedder's chip size) for each face."""
        import dlib

        rgb = to_rgb_array(image)
        faces = self.detect(rgb, attributes=False) if faces is None else faces
        if not faces:
            return []
        size = size or self.embedder.chip_size
        shapes = dlib.full_object_detections()
        for f in faces:
            shapes.append(f.shape)
        return list(dlib.get_face_chips(rgb, shapes, size, self.embedder.chip_padding))

    def embed(self, image: Any, faces: list[Face] | None = None) -> list[Face]:
        """Detect (unless ``faces`` is given) and fill ``face.embedding`` for every face."""
        rgb = to_rgb_array(image)
        faces = self.detect(rgb) if faces is None else faces
        if not faces:
            return []
        vecs = self.embedder.embed(self.align(rgb, faces))
        for f, v in zip(faces, vecs, strict=True):
            f.embedding = np.asarray(v, dtype=np.float32)
        return faces

    def embedding(self, image: Any) -> np.ndarray | None:
        """The embedding of the largest face in ``image``, or None when there is no face."""
        faces = self.embed(image)
        return faces[0].embedding if faces else None

    # verification --------------------------------------------------------------
    def verify(self, a: Any, b: Any, threshold: float | None = None) -> Verification:
        """Are the largest faces of ``a`` and ``b`` the same person? (distance < threshold)."""
        thr = self.threshold if threshold is None else float(threshold)
        fa = self.embed(a)
        fb = self.embed(b)
        if not fa or not fb:
            which = " and ".join(n for n, f in (("first", fa), ("second", fb)) if not f)
            return Verification(
                None,
                False,
                thr,
                self.embedder.metric,
                fa[0] if fa else None,
                fb[0] if fb else None,
                reason=f"no face found in the {which} image",
            )
        d = distance(fa[0].embedding, fb[0].embedding, self.embedder.metric)
        return Verification(d, d < thr, thr, self.embedder.metric, fa[0], fb[0])

    def timed_embed(self, image: Any) -> tuple[list[Face], dict[str, float]]:
        """``embed`` with per-stage milliseconds (detect, align+embed)."""
        t0 = time.perf_counter()
        rgb = to_rgb_array(image)
        faces = self.detect(rgb)
        t1 = time.perf_counter()
        if faces:
            self.embed(rgb, faces)
        t2 = time.perf_counter()
        return faces, {"detect": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3}
