"""The ``face-recognition`` task runner: images give FaceResults, videos give VideoFaceResults.

``deepapps run face-recognition photo.jpg``                      faces, landmarks, pose, eyes
``deepapps run face-recognition photo.jpg --gallery g.db``       + identity and distance per face
``deepapps run face-recognition clip.mp4 --gallery g.db``        annotated video + fps
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deepapps import InputError, ModelSpec, Runner
from deepapps.runtime.images import load_image

from .recognizer import FaceRecognizer, to_rgb_array
from .results import FaceResult, VerifyResult
from .video import is_video, process_video

_RECOGNIZER_KEYS = ("detector", "landmarks", "upsample", "min_score")
_CALL_KEYS = (
    *_RECOGNIZER_KEYS,
    *("gallery", "threshold", "embed", "include_embeddings", "progress"),
    *("out", "detect_width", "reembed_every", "redetect_every", "max_frames"),
)


class FaceRecognitionRunner(Runner):
    """Calls :class:`FaceRecognizer` (and a :class:`Gallery` when ``gallery=`` is given) per input.

    Call options: ``detector`` (hog|cnn), ``landmarks`` (5|68), ``upsample``, ``min_score``,
    ``gallery`` (a path or Gallery: adds identity + distance), ``threshold``, ``embed`` (compute
    embeddings without a gallery; ``include_embeddings`` puts them in the JSON), and for videos
    ``out``, ``detect_width``, ``reembed_every``, ``redetect_every``, ``max_frames``.
    """

    task = "face-recognition"

    def __init__(self, model: Any = None, device: str = "cpu", **options: Any) -> None:
        name = model.name if isinstance(model, ModelSpec) else (str(model) if model else "dlib-resnet-face")
        super().__init__(name, device, **options)
        self._model = model
        self._recognizers: dict[tuple, FaceRecognizer] = {}
        self._galleries: dict[str, Any] = {}

    def recognizer(self, **options: Any) -> FaceRecognizer:
        merged = {**{k: v for k, v in self.options.items() if k in _RECOGNIZER_KEYS}, **options}
        key = tuple(sorted((k, merged[k]) for k in _RECOGNIZER_KEYS if k in merged))
        if key not in self._recognizers:
            shared = next(iter(self._recognizers.values()), None)
            rec = FaceRecognizer(self._model, device=self.device, **dict(key))
            if shared is not None and shared._embedder is not None:
                rec._embedder = shared._embedder  # one embedder per runner
            self._recognizers[key] = rec
        return self._recognizers[key]

    def gallery(self, path: Any, recognizer: FaceRecognizer):
        from .gallery import Gallery

        if path is None or path is False:
            return None
        if isinstance(path, Gallery):
            return path
        key = str(Path(str(path)).expanduser())
        if not Path(key).exists():
            raise InputError(
                f"no face gallery at {key}; create one with `deepapps faces enroll NAME photo.jpg --gallery {key}`"
            )
        if key not in self._galleries:
            self._galleries[key] = Gallery(key, recognizer=recognizer)
        return self._galleries[key]

    def _split(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        unknown = sorted(set(kwargs) - set(_CALL_KEYS))
        if unknown:
            raise InputError(
                f"face-recognition: unknown option(s) {', '.join(unknown)}; valid: {', '.join(_CALL_KEYS)}"
            )
        merged = {**self.options, **kwargs}
        rec_opts = {k: merged.pop(k) for k in list(merged) if k in _RECOGNIZER_KEYS}
        return rec_opts, merged

    def run_one(self, item: Any, **kwargs: Any):
        rec_opts, opts = self._split(kwargs)
        rec = self.recognizer(**rec_opts)
        gallery = self.gallery(opts.get("gallery"), rec)
        if is_video(item):
            result = process_video(
                item,
                rec,
                gallery=gallery,
                out=opts.get("out"),
                detect_width=int(opts.get("detect_width", 480)),
                reembed_every=int(opts.get("reembed_every", 10)),
                redetect_every=int(opts.get("redetect_every", 5)),
                max_frames=opts.get("max_frames"),
                threshold=opts.get("threshold"),
                progress=bool(opts.get("progress", True)),
            )
            result.task, result.model = self.task, self.model_name
            return result
        t0 = time.perf_counter()
        pil = load_image(item)
        rgb = to_rgb_array(pil)
        t1 = time.perf_counter()
        faces = rec.detect(rgb)
        t2 = time.perf_counter()
        want_embed = gallery is not None or bool(opts.get("embed")) or bool(opts.get("include_embeddings"))
        threshold = opts.get("threshold")
        if faces and want_embed:
            rec.embed(rgb, faces)
        t3 = time.perf_counter()
        if faces and gallery is not None:
            gallery.identify(faces, threshold=threshold)
        t4 = time.perf_counter()
        return FaceResult(
            task=self.task,
            model=self.model_name,
            faces=faces,
            image_size=(pil.width, pil.height),
            detector=rec.detector_name,
            threshold=(rec.threshold if threshold is None else float(threshold)) if want_embed else None,
            gallery=str(gallery.path) if gallery is not None else None,
            message="" if faces else "no face found",
            include_embeddings=bool(opts.get("include_embeddings")),
            image=pil,
            timings={
                "preprocess": (t1 - t0) * 1e3,
                "detect": (t2 - t1) * 1e3,
                "embed": (t3 - t2) * 1e3,
                "search": (t4 - t3) * 1e3,
            },
        )

    def verify(self, a: Any, b: Any, threshold: float | None = None, **rec_opts: Any) -> VerifyResult:
        """1:1 verification of two images as a Result (``same`` at the embedder's threshold)."""
        rec = self.recognizer(**rec_opts)
        t0 = time.perf_counter()
        pa, pb = load_image(a), load_image(b)
        v = rec.verify(pa, pb, threshold=threshold)
        return VerifyResult(
            task=self.task,
            model=self.model_name,
            distance=v.distance,
            same=v.same,
            threshold=v.threshold,
            metric=v.metric,
            face_a=v.face_a,
            face_b=v.face_b,
            reason=v.reason,
            image_a=pa,
            image_b=pb,
            timings={"total": (time.perf_counter() - t0) * 1e3},
        )


def make_runner(model: Any = None, device: str = "cpu", **options: Any) -> FaceRecognitionRunner:
    """TaskSpec runner factory for ``face-recognition`` (dlib runs on the CPU)."""
    bad = sorted(set(options) - set(_CALL_KEYS))
    if bad:
        raise InputError(
            f"face-recognition: unknown option(s) {', '.join(bad)}; valid: {', '.join(_CALL_KEYS)}"
        )
    return FaceRecognitionRunner(model, device, **options)
