"""The ``face-recognition`` task runner: images give FaceResults, videos give VideoFaceResults.

``deepapps run face-recognition photo.jpg``                      faces, landmarks, pose, eyes
``deepapps run face-recognition photo.jpg --gallery g.db``       + identity and distance per face
``deepapps run face-recognition clip.mp4 --gallery g.db``        annotated video + fps

The core resolves the model, picks the device and checks every option against the declaration
in :mod:`.specs` before this module is imported; the runner only loads and runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deepapps import ModelRef, Runner
from deepapps.runner import describe_input
from deepapps.runtime.images import load_image
from deepapps.runtime.timing import Timer

from .models import Embedder, load_embedder
from .recognizer import FaceRecognizer, to_rgb_array
from .results import FaceResult, VerifyResult
from .specs import DEFAULTS, RECOGNIZER_OPTIONS, TASK
from .video import is_video, process_video

_RECOGNIZER_KEYS = tuple(o.name for o in RECOGNIZER_OPTIONS)


class FaceRecognitionRunner(Runner):
    """Runs :class:`FaceRecognizer` (and a :class:`Gallery` when ``gallery=`` is given) per input.

    The embedder (the task's model) loads once with the runner; recognizers (one per detector,
    landmarks, upsample and score setting) and galleries (one per path) are made on first use and
    share it. Options: ``deepapps options face-recognition``.
    """

    task = TASK

    def __init__(self, model: ModelRef | Embedder, device: str, precision: str) -> None:
        self.embedder = load_embedder(model, device)
        name = model.name if isinstance(model, ModelRef) else str(self.embedder.name)
        super().__init__(name, device, precision)
        self._recognizers: dict[tuple, FaceRecognizer] = {}
        self._galleries: dict[str, Any] = {}
        self._recognizer(*(DEFAULTS[k] for k in _RECOGNIZER_KEYS))  # detector + landmarks load now

    # shared parts -------------------------------------------------------------------------------
    def recognizer_for(self, **call_options: Any) -> FaceRecognizer:
        """The recognizer for these call options (checked against the declaration; the runner's
        defaults fill the rest)."""
        opts = self.check_call_options(call_options)
        return self._recognizer(*(opts[k] for k in _RECOGNIZER_KEYS))

    def _recognizer(self, detector: str, landmarks: int, upsample: int, min_score: float) -> FaceRecognizer:
        key = (detector, landmarks, upsample, min_score)
        if key not in self._recognizers:
            self._recognizers[key] = FaceRecognizer(
                self.embedder, detector=detector, landmarks=landmarks, upsample=upsample,
                min_score=min_score, device=self.device,
            )  # fmt: skip
        return self._recognizers[key]

    def gallery(self, path: str | Path | None, recognizer: FaceRecognizer | None = None):
        """The existing gallery at ``path`` (None: no gallery); a missing file is an InputError."""
        from .gallery import Gallery, gallery_path

        if path is None:
            return None
        key = str(gallery_path(path))
        if key not in self._galleries:
            self._galleries[key] = Gallery(key, recognizer=recognizer or self.recognizer_for(), create=False)
        return self._galleries[key]

    # running ------------------------------------------------------------------------------------
    def run_one(
        self, item: Any, *, detector: str, landmarks: int, upsample: int, min_score: float,
        gallery: Path | None, threshold: float | None, top_k: int, embed: bool, include_embeddings: bool,
        out: Path | None, detect_width: int, redetect_every: int, reembed_every: int,
        max_frames: int | None, progress: bool,
    ) -> FaceResult | Any:  # fmt: skip
        """One image or video; every option arrives checked, with the declared defaults filled in."""
        started = time.perf_counter()
        rec = self._recognizer(detector, landmarks, upsample, min_score)
        faces_gallery = self.gallery(gallery, rec)
        if is_video(item):
            result = process_video(
                item, rec, gallery=faces_gallery, out=out, detect_width=detect_width,
                reembed_every=reembed_every, redetect_every=redetect_every, max_frames=max_frames,
                threshold=threshold, progress=progress,
            )  # fmt: skip
            return self.finish(result, item, {}, started=started)
        want_embed = faces_gallery is not None or embed or include_embeddings
        result, stages = self._image(item, rec, faces_gallery, threshold, top_k, want_embed)
        result.include_embeddings = include_embeddings
        return self.finish(result, item, stages, started=started)

    def _image(
        self,
        item: Any,
        rec: FaceRecognizer,
        gallery: Any,
        threshold: float | None,
        top_k: int,
        want_embed: bool,
    ) -> tuple[FaceResult, dict[str, float]]:
        timer = Timer()
        with timer.stage("preprocess"):
            pil = load_image(item)
            rgb = to_rgb_array(pil)
        with timer.stage("detect"):
            faces = rec.detect(rgb)
        with timer.stage("embed"):
            if faces and want_embed:
                rec.embed(rgb, faces)
        with timer.stage("search"):
            if faces and gallery is not None:
                gallery.identify(faces, threshold=threshold, top_k=top_k)
        result = FaceResult(
            faces=faces,
            image_size=(pil.width, pil.height),
            detector=rec.detector_name,
            threshold=(rec.threshold if threshold is None else threshold) if want_embed else None,
            gallery=str(gallery.path) if gallery is not None else None,
            message="" if faces else "no face found",
            image=pil,
        )
        return result, timer.ms

    def verify(self, a: Any, b: Any, **call_options: Any) -> VerifyResult:
        """1:1 verification of the largest faces of two images as a Result (``same`` under the
        threshold). ``call_options`` are the task's declared options (checked: a typo raises)."""
        started = time.perf_counter()
        opts = self.check_call_options(call_options)
        rec = self._recognizer(*(opts[k] for k in _RECOGNIZER_KEYS))
        timer = Timer()
        with timer.stage("preprocess"):
            pa, pb = load_image(a), load_image(b)
        with timer.stage("verify"):
            v = rec.verify(pa, pb, threshold=opts["threshold"])
        result = VerifyResult(
            source=f"{describe_input(a)} vs {describe_input(b)}",
            distance=v.distance, same=v.same, threshold=v.threshold, metric=v.metric,
            face_a=v.face_a, face_b=v.face_b, reason=v.reason, image_a=pa, image_b=pb,
        )  # fmt: skip
        return self.finish(result, (a, b), timer.ms, started=started)


def make_runner(model: ModelRef, device: str, precision: str) -> FaceRecognitionRunner:
    """TaskSpec runner factory of ``face-recognition`` (dlib runs on the CPU whatever ``device`` says;
    the task declares no load-time options)."""
    return FaceRecognitionRunner(model, device, precision)
