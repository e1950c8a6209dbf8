"""Video face recognition: detect every frame, track faces, embed when due, annotate, write.

Speed on a small CPU comes from three choices, all options of :func:`process_video`:
- the whole frame is searched every ``redetect_every`` frames (and whenever no face is tracked)
  on a grey copy scaled to ``detect_width`` pixels wide (HOG finds faces of about 80 px at that
  scale, i.e. ``80 * width / detect_width`` px in the frame); in between, each tracked face is
  searched for only in a window around its last box, rescaled so the face is about 100 px;
- faces are tracked from frame to frame by box overlap (IoU), and a track is embedded (the
  expensive ResNet step) when it appears and then every ``reembed_every`` frames; between
  embeddings it keeps its identity and distance;
- landmarks (cheap) run on every face of every frame, so head pose and the eye aspect ratio
  (blinks) follow every frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepapps import InputError
from deepapps.inputs import VIDEO_SUFFIXES

from .attributes import EAR_CLOSED
from .recognizer import Face, FaceRecognizer
from .results import VideoFaceResult, face_label
from .specs import DEFAULTS


def is_video(source: Any) -> bool:
    return isinstance(source, (str, Path)) and Path(str(source)).suffix.lower() in VIDEO_SUFFIXES


def iou(a: tuple, b: tuple) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    box: tuple
    identity: str | None = None
    distance: float | None = None
    last_embedded: int = -(10**9)
    closed_frames: int = 0
    blinks: int = 0
    seen: int = 0
    embedding: Any = field(default=None, repr=False)


class FaceTracker:
    """Greedy IoU matching of this frame's faces to the previous frame's tracks."""

    def __init__(self, min_iou: float = 0.3) -> None:
        self.min_iou = min_iou
        self.tracks: list[Track] = []
        self.blinks = 0

    def update(self, faces: list[Face]) -> list[Track]:
        pairs = sorted(
            ((iou(f.box, t.box), i, j) for i, f in enumerate(faces) for j, t in enumerate(self.tracks)),
            reverse=True,
        )
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for score, i, j in pairs:
            if score < self.min_iou or i in assigned or j in used:
                continue
            assigned[i] = self.tracks[j]
            used.add(j)
        out = []
        for i, f in enumerate(faces):
            track = assigned.get(i) or Track(box=f.box)
            track.box = f.box
            track.seen += 1
            ear = f.attributes.get("ear")
            if ear is not None:
                if ear < EAR_CLOSED:
                    track.closed_frames += 1
                else:
                    if track.closed_frames >= 1:
                        track.blinks += 1
                        self.blinks += 1
                    track.closed_frames = 0
            out.append(track)
        self.tracks = out
        return out


def annotate_bgr(frame: np.ndarray, faces: list[Face]) -> None:
    """Draw boxes and ``name distance`` labels onto a BGR frame in place (OpenCV, fast)."""
    import cv2

    for f in faces:
        if f.distance is None:
            color = (0, 200, 255)
        else:
            color = (80, 200, 40) if f.identity else (50, 60, 230)
        x1, y1, x2, y2 = (int(v) for v in f.box)
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, 2)
        label = face_label(f)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(frame, (x1, max(0, y1 - th - 8)), (x1 + tw + 4, max(th + 8, y1)), color, -1)
        cv2.putText(frame, label, (x1 + 2, max(th + 4, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)


def output_path(source: Path, out: str | Path | bool | None) -> Path | None:
    """Where the annotated copy of ``source`` goes: ``out`` itself when it names a video file, else
    ``<out or runs/face-recognition>/<stem>_faces.mp4`` (numbered rather than overwriting an earlier
    run's file); ``False``: nowhere."""
    if out is False:
        return None
    if out and Path(out).suffix.lower() in VIDEO_SUFFIXES:
        target = Path(out).expanduser()
    else:
        folder = Path(out).expanduser() if out else Path("runs") / "face-recognition"
        target = folder / f"{source.stem}_faces.mp4"
        n = 1
        while target.exists():
            target = folder / f"{source.stem}_faces-{n}.mp4"
            n += 1
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


@dataclass
class _VideoState:
    """What the frame loop accumulates."""

    tracker: FaceTracker = field(default_factory=FaceTracker)
    seen: dict[str, int] = field(default_factory=dict)  # identity -> frames
    frames: int = 0
    faces: int = 0
    processing: float = 0.0  # seconds spent outside decoding and encoding
    size: tuple[int, int] = (0, 0)
    last: Any = None


class _LazyWriter:
    """An mp4v writer opened on the first frame (its size is known only then)."""

    def __init__(self, path: Path | None, fps: float) -> None:
        self.path, self.fps, self._writer = path, fps, None

    def write(self, frame: np.ndarray) -> None:
        import cv2

        if self.path is None:
            return
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"cannot write video {self.path} (mp4v codec unavailable?)")
        self._writer.write(frame)

    def release(self) -> None:
        if self._writer is not None:
            self._writer.release()


def _open_capture(path: Path):
    import cv2

    if not path.is_file():
        raise InputError(f"video {path}: file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"video {path}: cannot be opened; is it a video file OpenCV can decode?")
    return cap


def process_video(
    source: str | Path,
    recognizer: FaceRecognizer,
    gallery: Any = None,
    out: str | Path | bool | None = None,
    detect_width: int = DEFAULTS["detect_width"],
    reembed_every: int = DEFAULTS["reembed_every"],
    redetect_every: int = DEFAULTS["redetect_every"],
    max_frames: int | None = DEFAULTS["max_frames"],
    threshold: float | None = DEFAULTS["threshold"],
    progress: bool = DEFAULTS["progress"],
) -> VideoFaceResult:
    """Annotate every face of a video with its identity and distance (with a gallery) and write it
    to :func:`output_path` (``out=False``: write nothing)."""
    import cv2

    path = Path(source)
    cap = _open_capture(path)
    writer = _LazyWriter(output_path(path, out), cap.get(cv2.CAP_PROP_FPS) or 25.0)
    total = min(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 0, max_frames or 10**12) or None
    bar = _bar(total, path.name) if progress else None
    thr = recognizer.threshold if (gallery is not None and threshold is None) else threshold
    state = _VideoState()
    t_start = time.perf_counter()
    try:
        while max_frames is None or state.frames < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            _process_frame(
                frame, recognizer, gallery, state, detect_width, redetect_every, reembed_every, thr
            )
            writer.write(frame)
            if bar is not None:
                bar.update(1)
    finally:
        cap.release()
        writer.release()
        if bar is not None:
            bar.close()
    if state.frames == 0:
        raise InputError(f"video {path}: no frame could be decoded")
    return _video_result(path, writer.path, state, time.perf_counter() - t_start, recognizer, gallery)


def _bar(total: int | None, name: str):
    from deepapps.runtime.progress import progress as make_bar

    return make_bar(total=total, desc=f"faces {name}", unit="frame")


def _process_frame(
    frame: np.ndarray, recognizer: FaceRecognizer, gallery: Any, state: _VideoState, detect_width: int,
    redetect_every: int, reembed_every: int, threshold: float | None,
) -> None:  # fmt: skip
    """Detect (whole frame when due, else near the tracks), track, name the faces, draw them in place."""
    t0 = time.perf_counter()
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    tracker = state.tracker
    if tracker.tracks and redetect_every > 1 and state.frames % redetect_every:
        faces = detect_near(recognizer, rgb, [t.box for t in tracker.tracks])
    else:
        faces = detect_scaled(recognizer, rgb, detect_width)
    tracks = tracker.update(faces)
    if gallery is not None:
        _name_tracks(recognizer, gallery, rgb, faces, tracks, state, reembed_every, threshold)
    annotate_bgr(frame, faces)
    state.processing += time.perf_counter() - t0
    state.frames += 1
    state.faces += len(faces)
    state.size = (frame.shape[1], frame.shape[0])
    state.last = frame


def _name_tracks(
    recognizer: FaceRecognizer, gallery: Any, rgb: np.ndarray, faces: list[Face], tracks: list[Track],
    state: _VideoState, reembed_every: int, threshold: float | None,
) -> None:  # fmt: skip
    """Embed and search the tracks that are due; every face takes its track's identity."""
    due = [i for i, t in enumerate(tracks) if state.frames - t.last_embedded >= reembed_every]
    if due:
        recognizer.embed(rgb, [faces[i] for i in due])
        gallery.identify([faces[i] for i in due], threshold=threshold)
        for i in due:
            tracks[i].identity, tracks[i].distance = faces[i].identity, faces[i].distance
            tracks[i].last_embedded = state.frames
    for f, t in zip(faces, tracks, strict=True):
        f.identity, f.distance = t.identity, t.distance
        if t.identity:
            state.seen[t.identity] = state.seen.get(t.identity, 0) + 1


def _video_result(
    path: Path, out_path: Path | None, state: _VideoState, elapsed: float, recognizer: FaceRecognizer,
    gallery: Any,
) -> VideoFaceResult:  # fmt: skip
    from PIL import Image

    last = state.last
    return VideoFaceResult(
        source=str(path),
        output=str(out_path) if out_path else None,
        frames=state.frames,
        width=state.size[0],
        height=state.size[1],
        fps=round(state.frames / elapsed, 2),
        processing_fps=round(state.frames / state.processing, 2) if state.processing else 0.0,
        faces_per_frame=round(state.faces / state.frames, 3),
        identities=dict(sorted(state.seen.items(), key=lambda kv: -kv[1])),
        blinks=state.tracker.blinks,
        detector=recognizer.detector_name,
        gallery=str(gallery.path) if gallery is not None else None,
        last_frame=Image.fromarray(np.ascontiguousarray(last[:, :, ::-1])) if last is not None else None,
        timings={"process": state.processing * 1e3, "decode_encode": (elapsed - state.processing) * 1e3},
    )


def _grey(rgb: np.ndarray, recognizer: FaceRecognizer) -> np.ndarray:
    """HOG runs about 20% faster on one channel; the CNN keeps colour."""
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if recognizer.detector_name == "hog" else rgb


def detect_scaled(recognizer: FaceRecognizer, rgb: np.ndarray, detect_width: int | None) -> list[Face]:
    """Detect on a copy scaled to ``detect_width`` wide, then landmarks and boxes at full size."""
    import cv2

    h, w = rgb.shape[:2]
    scale = detect_width / w if detect_width and w > detect_width else 1.0
    small = _grey(rgb, recognizer)
    if scale != 1.0:
        small = cv2.resize(small, (detect_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    found = recognizer._boxes(np.ascontiguousarray(small), 0)
    if not found:
        return []
    boxes = [(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale) for r, _ in found]
    return recognizer.detect(rgb, boxes=boxes, scores=[s for _, s in found])


def detect_near(
    recognizer: FaceRecognizer, rgb: np.ndarray, boxes: list[tuple], face_px: int = 100
) -> list[Face]:
    """Detect only around previous boxes: a window 2.2x the box, rescaled so the face is ``face_px``."""
    import cv2

    h, w = rgb.shape[:2]
    grey = _grey(rgb, recognizer)
    out_boxes: list[tuple] = []
    scores: list[float] = []
    for x1, y1, x2, y2 in boxes:
        bw, bh = max(1, x2 - x1), max(1, y2 - y1)
        wx1, wy1 = max(0, int(x1 - 0.6 * bw)), max(0, int(y1 - 0.6 * bh))
        wx2, wy2 = min(w, int(x2 + 0.6 * bw)), min(h, int(y2 + 0.6 * bh))
        if wx2 - wx1 < 8 or wy2 - wy1 < 8:
            continue
        s = face_px / bw
        win = cv2.resize(
            grey[wy1:wy2, wx1:wx2],
            (max(1, round((wx2 - wx1) * s)), max(1, round((wy2 - wy1) * s))),
            interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
        )
        found = recognizer._boxes(np.ascontiguousarray(win), 0)
        if not found:
            continue
        r, score = max(found, key=lambda rs: rs[1])
        box = (wx1 + r.left() / s, wy1 + r.top() / s, wx1 + r.right() / s, wy1 + r.bottom() / s)
        if all(iou(box, b) < 0.5 for b in out_boxes):
            out_boxes.append(box)
            scores.append(score)
    if not out_boxes:
        return []
    return recognizer.detect(rgb, boxes=out_boxes, scores=scores)
