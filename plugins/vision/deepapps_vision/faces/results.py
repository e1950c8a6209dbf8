"""Result objects of the ``face-recognition`` task (one per image or video)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepapps import Result
from deepapps.results import private

from .recognizer import Face

_COLORS = {"known": (40, 200, 80), "unknown": (230, 60, 50), "plain": (255, 200, 0)}


def face_label(face: Face) -> str:
    """``name 0.41`` for a gallery match, ``unknown 0.73`` for none, else the detector score."""
    if face.distance is not None:
        return f"{face.identity or 'unknown'} {face.distance:.2f}"
    return f"face {face.score:.2f}"


def draw_faces(image, faces: list[Face], landmarks: bool = True):
    """A copy of the PIL ``image`` with boxes, labels and landmarks drawn."""
    from PIL import ImageDraw

    img = image.copy()
    draw = ImageDraw.Draw(img)
    width = max(2, round(min(img.size) / 200))
    for f in faces:
        kind = "plain" if f.distance is None else ("known" if f.identity else "unknown")
        color = _COLORS[kind]
        draw.rectangle(f.box, outline=color, width=width)
        label = face_label(f)
        x, y = f.box[0], max(0, f.box[1] - 12 - width)
        tb = draw.textbbox((x, y), label)
        draw.rectangle((tb[0] - 2, tb[1] - 2, tb[2] + 2, tb[3] + 2), fill=color)
        draw.text((x, y), label, fill=(0, 0, 0))
        if landmarks and f.landmarks is not None:
            r = max(1, width // 2)
            for px, py in f.landmarks:
                draw.ellipse((px - r, py - r, px + r, py + r), fill=(0, 170, 255))
    return img


@dataclass
class FaceResult(Result):
    """Faces found in one image: boxes, scores, landmarks, attributes, identities (with a gallery)."""

    faces: list[Face] = field(default_factory=list)
    image_size: tuple[int, int] = (0, 0)
    detector: str = "hog"
    threshold: float | None = None
    gallery: str | None = None
    message: str = ""
    include_embeddings: bool = False
    image: Any = private()

    @property
    def count(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("include_embeddings", None)
        out["faces"] = [f.to_dict(embedding=self.include_embeddings) for f in self.faces]
        out["count"] = len(self.faces)
        return out

    def plot(self):
        if self.image is None:
            raise NotImplementedError("this result holds no image to draw on")
        return draw_faces(self.image, self.faces)

    def summary(self) -> str:
        if not self.faces:
            return self.message or "no face found"
        parts = []
        for f in self.faces:
            who = ""
            if f.distance is not None:
                others = ", ".join(f"{m.name} {m.distance:.3f}" for m in f.matches[1:])
                who = f" {f.identity or 'unknown'} (distance {f.distance:.3f}{'; next: ' + others if others else ''})"
            pose = ""
            if "yaw" in f.attributes:
                a = f.attributes
                pose = f" yaw {a['yaw']:.0f} pitch {a['pitch']:.0f} roll {a['roll']:.0f} ear {a['ear']:.2f}"
            parts.append(f"face {list(f.box)} score {f.score:.2f}{who}{pose}")
        return f"{len(self.faces)} face(s): " + "; ".join(parts)


@dataclass
class VideoFaceResult(Result):
    """A processed video: where the annotated copy went, frame counts, identities seen and speed."""

    output: str | None = None
    frames: int = 0
    width: int = 0
    height: int = 0
    fps: float = 0.0  # end to end: decode + detect + embed (when due) + draw + encode
    processing_fps: float = 0.0  # without decoding and encoding
    faces_per_frame: float = 0.0
    identities: dict[str, int] = field(default_factory=dict)  # name -> frames seen
    blinks: int = 0
    detector: str = "hog"
    gallery: str | None = None
    last_frame: Any = private()

    def plot(self):
        if self.last_frame is None:
            raise NotImplementedError("no frame kept")
        return self.last_frame

    def summary(self) -> str:
        who = ", ".join(f"{k} ({v} frames)" for k, v in self.identities.items()) or "no identity"
        return (
            f"{self.frames} frames {self.width}x{self.height} at {self.fps:.1f} fps end to end "
            f"({self.processing_fps:.1f} fps processing); {self.faces_per_frame:.2f} faces/frame; {who}; "
            f"blinks {self.blinks}; wrote {self.output}"
        )


@dataclass
class VerifyResult(Result):
    """1:1 verification of the largest faces of two images."""

    distance: float | None = None
    same: bool = False
    threshold: float = 0.6
    metric: str = "euclidean"
    face_a: Face | None = None
    face_b: Face | None = None
    reason: str = ""
    image_a: Any = private()
    image_b: Any = private()

    def plot(self):
        from PIL import Image, ImageDraw

        if self.image_a is None or self.image_b is None:
            raise NotImplementedError("no images kept")
        a = draw_faces(self.image_a, [self.face_a] if self.face_a else [], landmarks=False)
        b = draw_faces(self.image_b, [self.face_b] if self.face_b else [], landmarks=False)
        h = 256
        a = a.resize((max(1, round(a.width * h / a.height)), h))
        b = b.resize((max(1, round(b.width * h / b.height)), h))
        canvas = Image.new("RGB", (a.width + b.width, h + 24), (255, 255, 255))
        canvas.paste(a, (0, 0))
        canvas.paste(b, (a.width, 0))
        text = self.reason or (
            f"{'SAME' if self.same else 'DIFFERENT'}: distance {self.distance:.3f} (threshold {self.threshold})"
        )
        ImageDraw.Draw(canvas).text((6, h + 6), text, fill=(0, 0, 0))
        return canvas

    def summary(self) -> str:
        if self.distance is None:
            return self.reason
        verdict = "same person" if self.same else "different people"
        return f"{verdict}: distance {self.distance:.4f} ({self.metric}, threshold {self.threshold})"
