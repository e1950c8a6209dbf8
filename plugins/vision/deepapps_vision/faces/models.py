"""The dlib models behind face recognition, and the pluggable embedder contract.

The real weights come from the CC0 PyPI package ``face-recognition-models`` 0.3.0 (a
dependency of ``deepapps[vision]``). Its ``__init__`` imports ``pkg_resources`` (gone from
current setuptools), so the ``.dat`` files are located through the installed distribution's
file list and never by importing it.

An *embedder* turns aligned face chips into vectors. Any object with the attributes of
:class:`Embedder` works; a third-party plugin registers one as a ``ModelSpec`` for the task
``face-recognition`` whose ``load(spec, device)`` returns it (e.g. ArcFace weights).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from deepapps import InputError, ModelNotAvailableError, ModelRef, ModelSpec

DISTRIBUTION = "face-recognition-models==0.3.0"
FILES = {
    "mmod": "face_recognition_models/models/mmod_human_face_detector.dat",
    "landmarks5": "face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
    "landmarks68": "face_recognition_models/models/shape_predictor_68_face_landmarks.dat",
}

#: sha256 of each file, checked by deepapps.runtime.pull whenever the file is used or pulled
DIGESTS = {
    "mmod": "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    "landmarks5": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    "landmarks68": "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
}

#: Euclidean distance under which two dlib descriptors are the same person (dlib's own choice:
#: "pairs of faces from the same person are within 0.6 of each other", dlib_face_recognition_resnet_model_v1).
DLIB_THRESHOLD = 0.6


def dlib_file(kind: str) -> Path:
    """The local path of one of dlib's auxiliary files (``mmod``, ``landmarks5``, ``landmarks68``)."""
    from deepapps.runtime.pull import model_path

    spec = ModelSpec(
        name=f"dlib-{kind}",
        task="face-recognition",
        source=f"pypi:{DISTRIBUTION}#{FILES[kind]}",
        sha256={Path(FILES[kind]).name: DIGESTS[kind]},
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

    def __init__(self, path: str | Path, name: str, num_jitters: int = 0):
        self.path = Path(path)
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


def load_dlib_resnet(spec: ModelSpec, device: str = "cpu") -> DlibResNetEmbedder:
    """``ModelSpec.load`` of ``dlib-resnet-face`` (dlib runs on the CPU in the ``dlib-bin`` wheel)."""
    from deepapps.runtime.pull import model_path

    return DlibResNetEmbedder(model_path(spec), name=spec.name)


def load_embedder(model: ModelRef | Embedder, device: str = "cpu") -> Embedder:
    """The embedder a resolved model names (its spec's ``load``, or a dlib ``.dat`` file), or ``model``
    itself when it already is one. The core resolves names; this only loads what it was handed."""
    emb = _from_ref(model, device) if isinstance(model, ModelRef) else model
    missing = [a for a in ("name", "dim", "chip_size", "chip_padding", "metric", "threshold", "embed")
               if not hasattr(emb, a)]  # fmt: skip
    if missing:
        raise InputError(
            f"face embedder {emb!r} lacks {', '.join(missing)} (see deepapps_vision.faces.models.Embedder)"
        )
    return emb


def _from_ref(ref: ModelRef, device: str) -> Any:
    from deepapps import resolve

    if ref.kind == "registered" and ref.spec is not None:
        loader = resolve(ref.spec.load)
        if loader is None:
            raise ModelNotAvailableError(f"model {ref.name!r} registers no loader for its embedder")
        return loader(ref.spec, device)
    if ref.kind == "path":
        path = ref.path
        if path.suffix.lower() != ".dat" or not path.is_file():
            raise InputError(
                f"face-recognition cannot load {path}: pass a dlib .dat descriptor file or a registered "
                "model (see `deepapps models --task face-recognition`)"
            )
        return DlibResNetEmbedder(path, name=path.stem)
    raise ModelNotAvailableError(
        f"face-recognition cannot load the hub model {ref.name!r}: pass a registered model "
        "(see `deepapps models --task face-recognition`) or a dlib .dat descriptor file"
    )
