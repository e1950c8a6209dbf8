"""Zoom-in: segment an object again on a crop around it, at the encoder's full input resolution.

A SAM sees the whole image at its input size (192 px for the bundled model, 1024 px for the official
ones), so a small object gets few embedding cells and its mask few logit cells. Zoom-in (Sofiiuk et
al., "f-BRS", CVPR 2020, and "Reviving Iterative Training with Mask Guidance for Interactive
Segmentation", 2021; FocalClick, CVPR 2022, refines in the same spirit) crops the image around the
object, the crop's long side grown by ``context`` object sides each way and magnified at most
``max_scale`` times, and runs the encoder and decoder on the crop. The crop comes from the prompt
itself: a box; or the previous mask (``mask_input``) and the positive clicks; or, for a first click
alone, the mask of a first pass on the whole image.

The low-resolution logits a zoomed prediction returns (``mask_input`` for the next click) are
resampled to the whole image's logit grid, so they mean the same as without zoom-in; a crop's
logits outside it are the crop's lowest logit (background).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ON = "on"
OFF = "off"
MODES = (ON, OFF)


@dataclass(frozen=True)
class Zoom:
    """Zoom-in settings: ``mode`` on or off, the largest magnification, the context around the object."""

    mode: str = OFF
    #: largest magnification of a crop over the whole image (crop long side >= image long side / max_scale)
    max_scale: float = 1.67
    #: context on each side of the object, in object sides (the crop's side is the object's x (1 + 2 context))
    context: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"zoom-in {self.mode!r} is unknown; use one of {', '.join(MODES)}")
        if not (self.max_scale >= 1 and self.context >= 0):
            raise ValueError(f"zoom-in needs max_scale >= 1 and context >= 0, not {self}")

    @property
    def active(self) -> bool:
        return self.mode == ON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Crop:
    """A crop of an image: top-left corner and size in pixels."""

    left: int
    top: int
    width: int
    height: int

    def of(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(
            image[self.top : self.top + self.height, self.left : self.left + self.width]
        )

    def contains(self, x: float, y: float) -> bool:
        return self.left <= x < self.left + self.width and self.top <= y < self.top + self.height


def crop_for(region: tuple[float, float, float, float], width: int, height: int, zoom: Zoom) -> Crop | None:
    """The crop around ``region`` (x1, y1, x2, y2 in pixels), or None when it would be the whole image."""
    x1, y1, x2, y2 = region
    long_side = max(width, height)
    side = max(x2 - x1, y2 - y1, 1.0) * (1 + 2 * zoom.context)
    side = max(side, long_side / zoom.max_scale)
    cw, ch = min(int(np.ceil(side)), width), min(int(np.ceil(side)), height)
    if cw >= width and ch >= height:
        return None
    left = int(round(min(max((x1 + x2) / 2 - cw / 2, 0), width - cw)))
    top = int(round(min(max((y1 + y2) / 2 - ch / 2, 0), height - ch)))
    return Crop(left, top, cw, ch)


def logits_region(logits: np.ndarray, width: int, height: int) -> tuple[float, float, float, float] | None:
    """Pixel box of the positive cells of whole-image low-res logits (L x L), or None when there are none."""
    ys, xs = np.nonzero(logits > 0)
    if len(xs) == 0:
        return None
    cell = max(width, height) / logits.shape[-1]
    return (xs.min() * cell, ys.min() * cell, (xs.max() + 1) * cell, (ys.max() + 1) * cell)


def _grid(crop: Crop, side: int, src_cell: float, dst_cell: float, inverse: bool):
    """Sampling grid (1 x L x L x 2, grid_sample's normalised x, y) between the whole image's logit grid
    and a crop's: ``inverse`` False samples the image grid at the crop's cell centres, True the reverse."""
    import torch

    centres = (torch.arange(side, dtype=torch.float32) + 0.5) * dst_cell
    if inverse:  # image cells (pixels) -> crop cells
        xs = (centres - crop.left) / src_cell
        ys = (centres - crop.top) / src_cell
    else:  # crop cells -> image cells
        xs = (centres + crop.left) / src_cell
        ys = (centres + crop.top) / src_cell
    gx, gy = xs / side * 2 - 1, ys / side * 2 - 1
    return torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]


def to_crop(logits, crop: Crop, width: int, height: int):
    """Whole-image low-res logits (1 x 1 x L x L) resampled onto the crop's logit grid."""
    import torch.nn.functional as F

    side = logits.shape[-1]
    grid = _grid(crop, side, max(width, height) / side, max(crop.width, crop.height) / side, False)
    return F.grid_sample(logits, grid.to(logits), mode="bilinear", padding_mode="border", align_corners=False)


def from_crop(logits, crop: Crop, width: int, height: int):
    """A crop's low-res logits (N x C x L x L) resampled onto the whole image's logit grid; cells outside
    the crop get the crop's lowest logit (background)."""
    import torch
    import torch.nn.functional as F

    side = logits.shape[-1]
    cell = max(width, height) / side
    grid = _grid(crop, side, max(crop.width, crop.height) / side, cell, True)
    out = F.grid_sample(
        logits, grid.expand(len(logits), -1, -1, -1).to(logits), mode="bilinear", align_corners=False
    )
    centres = (torch.arange(side, dtype=torch.float32) + 0.5) * cell
    inside_x = (centres >= crop.left) & (centres < crop.left + crop.width)
    inside_y = (centres >= crop.top) & (centres < crop.top + crop.height)
    inside = (inside_y[:, None] & inside_x[None, :]).to(logits.device)
    low = logits.amin((-1, -2), keepdim=True)
    return torch.where(inside, out, low)


def paste(masks, crop: Crop, width: int, height: int):
    """Crop-sized masks (N x h x w) placed into whole-image masks (N x H x W), False outside the crop."""
    out = masks.new_zeros((masks.shape[0], height, width))
    out[:, crop.top : crop.top + crop.height, crop.left : crop.left + crop.width] = masks
    return out


__all__ = ["Crop", "Zoom", "crop_for", "from_crop", "logits_region", "paste", "to_crop"]
