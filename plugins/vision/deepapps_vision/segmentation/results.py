"""Result of promptable segmentation: masks as arrays, COCO RLE in JSON, PNGs and an overlay picture."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepapps.results import Result, private

from . import rle

PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (220, 190, 255),
    (170, 110, 40),
)


@dataclass
class MaskInstance:
    """One mask: COCO RLE, area, COCO box ``[x, y, w, h]``, the model's IoU estimate and, where it
    came from a detector, the class and detection confidence."""

    rle: dict[str, Any]
    area: int
    bbox: list[int]
    score: float
    label: str | None = None
    det_conf: float | None = None
    stability: float | None = None
    prompt_box: list[float] | None = None


@dataclass(kw_only=True)
class SegmentationResult(Result):
    """Masks of one image. ``mode`` is ``prompt`` (points/box), ``detect`` (detector boxes as prompts)
    or ``everything`` (automatic mask generator). ``masks`` are N x H x W booleans."""

    width: int = 0
    height: int = 0
    mode: str = "prompt"
    instances: list[MaskInstance] = field(default_factory=list)
    points: list[list[float]] | None = None
    labels: list[int] | None = None
    box: list[float] | None = None
    embedding_cached: bool = False
    filters: dict[str, float] | None = None  # segment everything: the filters used
    masks: Any = private()  # np.ndarray N x H x W bool
    low_res_logits: Any = private()  # np.ndarray N x h x w float32 (feed back as mask_input)
    image: Any = private()  # the RGB PIL image

    @property
    def scores(self) -> np.ndarray:
        return np.asarray([m.score for m in self.instances], dtype=np.float32)

    def mask(self, i: int = 0) -> np.ndarray:
        """Mask ``i`` as an H x W boolean array."""
        return np.asarray(self.masks[i], dtype=bool)

    def mask_png(self, i: int = 0) -> bytes:
        """Mask ``i`` as PNG bytes (white object on black)."""
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.mask(i).astype(np.uint8) * 255).save(buf, format="PNG")
        return buf.getvalue()

    def save_masks(self, folder: str | Path, stem: str = "mask") -> list[Path]:
        """One PNG per mask (``stem-0.png`` ...); existing files are never overwritten."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(len(self.instances)):
            target = folder / f"{stem}-{i}.png"
            n = 1
            while target.exists():
                target = folder / f"{stem}-{i}-{n}.png"
                n += 1
            target.write_bytes(self.mask_png(i))
            paths.append(target)
        return paths

    def plot(self, alpha: float = 0.5, outlines: bool = True):
        """The image with every mask tinted, its outline, prompts (green +, red -) and boxes (PIL RGB)."""
        from PIL import Image, ImageDraw

        base = np.asarray(self.image.convert("RGB"), dtype=np.float32).copy()
        for i in range(len(self.instances)):
            m = self.mask(i)
            color = np.asarray(PALETTE[i % len(PALETTE)], dtype=np.float32)
            base[m] = base[m] * (1 - alpha) + color * alpha
            if outlines:
                base[_outline(m)] = color
        picture = Image.fromarray(base.clip(0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(picture)
        for i, inst in enumerate(self.instances):
            color = PALETTE[i % len(PALETTE)]
            if inst.prompt_box is not None:
                draw.rectangle(inst.prompt_box, outline=color, width=2)
            if inst.label:
                x, y = inst.bbox[0], max(inst.bbox[1] - 11, 0)
                draw.text((x + 2, y), f"{inst.label} {inst.score:.2f}", fill=color)
        if self.box is not None:
            draw.rectangle(self.box, outline=(255, 255, 0), width=2)
        for (x, y), lab in zip(self.points or [], self.labels or [], strict=False):
            color = (0, 220, 0) if lab == 1 else (230, 0, 0)
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=color, outline=(255, 255, 255))
        return picture

    def summary(self) -> str:
        if not self.instances:
            return f"{self.width}x{self.height}, no mask [{self.mode}]"
        if self.mode == "prompt":
            best = self.instances[0]
            return f"{self.width}x{self.height}, mask of {best.area} px (predicted IoU {best.score:.2f})"
        labels = [m.label for m in self.instances if m.label]
        named = f" ({', '.join(labels)})" if labels else ""
        return f"{self.width}x{self.height}, {len(self.instances)} masks [{self.mode}]{named}"


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def make_instances(
    masks: np.ndarray,
    scores: np.ndarray,
    names: list[str] | None = None,
    det_conf: list[float] | None = None,
    boxes: np.ndarray | None = None,
    stability: list[float] | None = None,
) -> list[MaskInstance]:
    """MaskInstances (RLE, area, box) for N x H x W boolean masks."""
    out = []
    for i, m in enumerate(masks):
        out.append(
            MaskInstance(
                rle=rle.encode(m),
                area=int(m.sum()),
                bbox=rle.bbox_xywh(m),
                score=round(float(scores[i]), 4),
                label=names[i] if names else None,
                det_conf=round(float(det_conf[i]), 4) if det_conf else None,
                stability=round(float(stability[i]), 4) if stability else None,
                prompt_box=[round(float(v), 2) for v in boxes[i]] if boxes is not None else None,
            )
        )
    return out
