"""The dlib models behind face recognition, and the pluggable embedder contract.

The real weights come from the CC0 PyPI package ``face-recognition-models`` 0.3.0 (a
dependency of ``deepapps[vision]``). Its ``__init__`` imports ``pkg_resources`` (gone from
current setuptools), so the ``.dat`` files are located through the installed distribution's
file list and never by importing it.

An *embedder* turns aligned face chips into vectors. Any object with the attributes of
:class:`Embedder` works; a third-party plugin registers one as a ``ModelSpec`` for the task
``face-recognition`` whose ``load(spec, device, **options)`` returns it (e.g. ArcFace weights).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from deepapps import InputError, ModelNotAvailableError, ModelSpec

DISTRIBUTION = "face-recognition-models==0.3.0"
FILES = {
    "resnet": "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
    "mmod": "face_recognition_models/models/mmod_human_face_detector.dat",
    "landmarks5": "face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
    "landmarks68": "face_recognition_models/models/shape_predictor_68_face_landmarks.dat",
}

#: Euclidean distance under which two dlib descriptors are the same person (dlib's own choice:
#: "pairs of faces from the same person are within 0.6 of each other", dlib_face_recognition_resnet_model_v1).
DLIB_THRESHOLD = 0.6


def dlib_file(kind: str) -> Path:
    """The local path of one dlib model file (``resnet``, ``mmod``, ``landmarks5``, ``landmarks68``)."""
    from deepapps.runtime.pull import model_path

    spec = ModelSpec(
        name=f"dlib-{kind}", task="face-recognition", source=f"pypi:{DISTRIBUTION}#{FILES[kind]}"
    )
    try:
        return model_path(spec)
    except ModelNotAvailableError as exc:
        raise ModelNotAvailableError(
            f"the dlib model file {Path(FILES[kind]).name} is not installed; run "
            f"`pip install '{DISTRIBUTION}'` (or `pip install 'deepapps[vision]'`)"
        ) from exc


def _dlib():
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - dlib-bin is a vision dependency
        raise ModelNotAvailableError("face recognition needs dlib: `pip install dlib-bin`") from exc
    return dlib


@functools.cache
def hog_detector():
    """dlib's HOG + linear SVM frontal face detector (built into dlib, no file)."""
    return _dlib().get_frontal_face_detector()


@functools.cache
def cnn_detector():
    """dlib's CNN face detector trained with max-margin object detection (MMOD)."""
    return _dlib().cnn_face_detection_model_v1(str(dlib_file("mmod")))


@functools.cache
def shape_predictor(points: int):
    """dlib's 5- or 68-point landmark predictor (ensemble of regression trees)."""
    if points not in (5, 68):
        raise InputError(f"landmarks must be 5 or 68 points, got {points}")
    return _dlib().shape_predictor(str(dlib_file(f"landmarks{points}")))


@runtime_checkable
class Embedder(Protocol):
    """What :class:`~deepapps_vision.faces.FaceRecognizer` needs from a face embedder.

    ``embed`` takes aligned RGB uint8 chips of ``chip_size`` x ``chip_size`` (aligned as
    ``dlib.get_face_chip`` does with ``chip_padding``) and returns an ``(n, dim)`` float32 array.
    Two faces are the same person when their ``metric`` distance is below ``threshold``.
    """

    name: str
    dim: int
    chip_size: int
    chip_padding: float
    metric: str  # "euclidean" or "cosine"
    threshold: float

    def embed(self, chips: list[np.ndarray]) -> np.ndarray: ...


class DlibResNetEmbedder:
    """dlib's ResNet-29 face descriptor: 128-D, Euclidean distance, same person under 0.6."""

    dim = 128
    chip_size = 150
    chip_padding = 0.25
    metric = "euclidean"
    threshold = DLIB_THRESHOLD

    def __init__(self, path: str | Path | None = None, name: str = "dlib-resnet-face", num_jitters: int = 0):
        self.path = Path(path) if path else dlib_file("resnet")
        if not self.path.exists():
            raise ModelNotAvailableError(f"face descriptor file {self.path} does not exist")
        self.name = name
        self.num_jitters = int(num_jitters)
        self._model = _dlib().face_recognition_model_v1(str(self.path))

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        batch = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        vecs = self._model.compute_face_descriptor(batch, self.num_jitters)
        return np.asarray([np.asarray(v) for v in vecs], dtype=np.float32)

    def __repr__(self) -> str:
        return f"DlibResNetEmbedder({self.path.name})"


def load_dlib_resnet(
    spec: ModelSpec | str | None = None, device: str = "cpu", **options: Any
) -> DlibResNetEmbedder:
    """``ModelSpec.load`` for ``dlib-resnet-face`` (dlib runs on the CPU in the ``dlib-bin`` wheel)."""
    if isinstance(spec, ModelSpec):
        from deepapps.runtime.pull import model_path

        try:
            path = model_path(spec)
        except ModelNotAvailableError:
            path = dlib_file("resnet")
        return DlibResNetEmbedder(path, name=spec.name, num_jitters=options.get("num_jitters", 0))
    return DlibResNetEmbedder(spec, num_jitters=options.get("num_jitters", 0))


def load_embedder(model: ModelSpec | str | Embedder | None, device: str = "cpu", **options: Any) -> Embedder:
    """An embedder from a registered ModelSpec (its ``load``), a ``.dat`` path, or an embedder object."""
    from deepapps import resolve

    if model is None:
        return load_dlib_resnet(None, device, **options)
    if isinstance(model, ModelSpec):
        loader = resolve(model.load)
        if loader is None:
            raise ModelNotAvailableError(f"model {model.name!r} has no loader")
        emb = loader(model, device, **options)
    elif isinstance(model, (str, Path)):
        if str(model).endswith(".dat"):
            emb = DlibResNetEmbedder(model, name=Path(model).stem)
        else:
            raise InputError(
                f"face embedder {model!r}: pass a registered model name (see `deepapps models --task "
                "face-recognition`) or a dlib .dat descriptor file"
            )
    else:
        emb = model
    missing = [
        a
        for a in ("name", "dim", "chip_size", "chip_padding", "metric", "threshold", "embed")
        if not hasattr(emb, a)
    ]
    if missing:
        raise InputError(
            f"face embedder {emb!r} lacks {', '.join(missing)} (see deepapps_vision.faces.models.Embedder)"
        )
    return emb
