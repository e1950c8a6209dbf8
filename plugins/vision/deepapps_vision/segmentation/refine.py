"""Edge-aware mask refinement: a guided filter on SAM's upsampled mask probabilities.

SAM draws every mask from logits at 4x its embedding's side (96 x 96 for the bundled model, 256 x 256
for the official ones) and upsamples them bilinearly, so a mask's edge is only as sharp as those
cells. The guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) is
the classic edge-preserving fix: inside every window it fits the mask probability as a linear
function of the image's colours, ``q = a . I + b``, so the filtered mask follows the image's own
edges where the colours change and stays smooth where they do not. It is applied after the model,
on each prompted mask; the model's logits (``mask_input`` for the next click) are left as they are.

Two rules then keep the filter from undoing what the network and the user agree on
(:func:`respect_prompts`): holes of the filtered mask up to ``holes`` logit cells are filled (a
patterned object, such as a football's black patches, is cut apart by an edge-following filter;
SAM's own ``remove_small_regions`` fills holes the same way for segment everything), and a click
wins over the filter: where the filter dropped a positive click's pixel that the network's mask
held, the part it dropped there comes back (and the other way round for a negative click).

Sizes are in mask-logit cells (the image's long side divided by the logit grid's side), so a setting
carries over between image sizes. The filter's coefficients vary smoothly at the window's scale, so
they are computed at ``cell_px`` pixels per logit cell and upsampled (He and Sun's "fast guided
filter"); only the final ``a . I + b`` is taken at the image's full size. That keeps a click cheap
whatever the photo's size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: No refinement (the published SAM behaviour).
NONE = "none"
GUIDED = "guided"
METHODS = (GUIDED, NONE)


@dataclass(frozen=True)
class Refinement:
    """How prompted masks are refined: ``method`` guided or none, window radius in logit cells, eps."""

    method: str = NONE
    #: radius and eps: chosen for the small models on 48 scenes val renders (docs/segmentation.md)
    radius: float = 5.0
    eps: float = 1e-5
    #: resolution of the filter's coefficients, in pixels per logit cell (the fast guided filter); the mask
    #: itself is always made at the image's full size
    cell_px: float = 2.0
    #: largest hole of a filtered mask that is filled, in logit cells (0: none)
    holes: float = 0.0
    #: the filtered probability a mask is cut at
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"mask refinement {self.method!r} is unknown; use one of {', '.join(METHODS)}")
        if not (self.radius > 0 and self.eps > 0 and self.cell_px > 0 and self.holes >= 0):
            raise ValueError(
                f"mask refinement needs radius, eps and cell_px above 0 and holes >= 0, not {self}"
            )
        if not 0 < self.threshold < 1:
            raise ValueError(f"mask refinement's threshold must be between 0 and 1, not {self.threshold}")

    @property
    def active(self) -> bool:
        return self.method == GUIDED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _window_sums(x, r: int):
    """Sums over windows of 2r+1 along the last axis, clipped at both ends (a cumulative sum, then slices)."""
    import torch

    n = x.shape[-1]
    cum = x.cumsum(-1)
    padded = torch.cat(
        [x.new_zeros(*x.shape[:-1], r + 1), cum, cum[..., -1:].expand(*x.shape[:-1], r)], dim=-1
    )  # padded[k + r + 1] = sum of x[: k + 1], clamped to 0 before the start and to the total after the end
    return padded[..., 2 * r + 1 : 2 * r + 1 + n] - padded[..., :n]


def box_mean(x, r: int):
    """Mean over a (2r+1)^2 window of the last two axes, windows clipped at the border."""
    import torch

    h, w = x.shape[-2:]
    sums = _window_sums(_window_sums(x, r).transpose(-1, -2), r).transpose(-1, -2)
    counts = []
    for n in (h, w):
        idx = torch.arange(n, device=x.device)
        counts.append((torch.clamp(idx + r + 1, max=n) - torch.clamp(idx - r, min=0)).to(x.dtype))
    return sums / (counts[0][:, None] * counts[1][None, :])


class Guide:
    """The image-only half of the guided filter for one image, computed once per image."""

    def __init__(
        self, image: np.ndarray, refinement: Refinement, logit_side: int, magnification: float = 1.0
    ) -> None:
        """``magnification``: how much ``image`` is enlarged against the image the radius is meant for (a
        zoom-in crop), so that the window covers the same part of the scene."""
        import torch
        import torch.nn.functional as F

        height, width = image.shape[:2]
        self.size = (height, width)
        full = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).to(torch.float32) / 255.0
        scale = min(1.0, refinement.cell_px * logit_side / max(height, width))
        self.work = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = full if scale == 1.0 else F.interpolate(full[None], self.work, mode="area")[0]
        self.full, self.small = full, small
        cell = max(self.work) / logit_side  # working-size pixels per logit cell
        self.r = max(1, round(refinement.radius * magnification * cell))
        self.mean = box_mean(small, self.r)  # 3 x h x w
        products = torch.stack([small[i] * small[j] for i in range(3) for j in range(3)])
        cov = box_mean(products, self.r).view(3, 3, *self.work) - self.mean[:, None] * self.mean[None, :]
        cov = cov.permute(2, 3, 0, 1).to(torch.float64) + refinement.eps * torch.eye(3, dtype=torch.float64)
        self.inv = torch.linalg.inv(cov).to(torch.float32).permute(2, 3, 0, 1).contiguous()  # 3 x 3 x h x w

    def filter(self, prob):
        """Refined probabilities (N x H x W) of mask probabilities ``prob`` (N x H x W) at full size."""
        import torch
        import torch.nn.functional as F

        p = prob.to(torch.float32)
        if p.shape[-2:] != self.work:
            p = F.interpolate(p[:, None], self.work, mode="area")[:, 0]
        stats = box_mean(torch.cat([p[:, None], self.small[None] * p[:, None]], 1), self.r)  # N x 4 x h x w
        mean_p, mean_ip = stats[:, 0], stats[:, 1:]
        cov_ip = mean_ip - self.mean[None] * mean_p[:, None]  # N x 3 x h x w
        a = (self.inv[None] * cov_ip[:, None]).sum(2)  # N x 3 x h x w
        b = mean_p - (a * self.mean[None]).sum(1)
        coef = box_mean(torch.cat([a, b[:, None]], 1), self.r)  # N x 4 x h x w
        if self.work != self.size:
            coef = F.interpolate(coef, self.size, mode="bilinear", align_corners=False)
        return (coef[:, :3] * self.full[None]).sum(1) + coef[:, 3]


def refine_masks(logits, guide: Guide, threshold: float = 0.5):
    """Boolean masks (N x H x W) from full-size mask logits (N x H x W) through the guided filter, cut at
    ``threshold``."""
    import torch

    return guide.filter(torch.sigmoid(logits.float())) > threshold


def respect_prompts(
    masks: np.ndarray, raw: np.ndarray, points: np.ndarray | None, labels: np.ndarray | None, max_hole: float
) -> np.ndarray:
    """Filtered masks (N x H x W bool) with their holes up to ``max_hole`` pixels filled, and each click
    kept as the network's mask ``raw`` (N x H x W bool) had it: a positive click the filter dropped gets
    back the region it dropped around the click, a negative click the filter added loses the region it
    added there. ``points`` are pixel x, y in the masks' frame."""
    from scipy import ndimage

    out = masks.copy()
    height, width = out.shape[-2:]
    if points is None or labels is None:
        points, labels = np.zeros((0, 2)), np.zeros(0)
    for i in range(len(out)):
        if max_hole > 0:  # a hole: a background region that does not touch the border
            regions, count = ndimage.label(~out[i])
            if count:
                small = np.bincount(regions.ravel()) <= max_hole
                small[0] = False
                small[np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]])] = False
                out[i] |= small[regions]
        for (x, y), label in zip(points, labels, strict=True):
            col, row = min(int(x), width - 1), min(int(y), height - 1)
            if label == 1 and raw[i, row, col] and not out[i, row, col]:
                regions, _ = ndimage.label(raw[i] & ~out[i])
                out[i] |= regions == regions[row, col]
            elif label == 0 and out[i, row, col] and not raw[i, row, col]:
                regions, _ = ndimage.label(out[i] & ~raw[i])
                out[i] &= regions != regions[row, col]
    return out
