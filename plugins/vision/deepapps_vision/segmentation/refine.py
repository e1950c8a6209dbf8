"""Edge-aware mask refinement: a guided filter on SAM's upsampled mask probabilities.

SAM draws every mask from logits at 4x its embedding's side (96 x 96 for the bundled model, 256 x 256
for the official ones) and upsamples them bilinearly, so a mask's edge is only as sharp as those
cells. The guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) is
the classic edge-preserving fix: inside every window it fits the mask probability as a linear
function of the image's colours, ``q = a . I + b``, so the filtered mask follows the image's own
edges where the colours change and stays smooth where they do not. It is applied after the model,
on each prompted mask; the model's logits (``mask_input`` for the next click) are left as they are.

Sizes are in mask-logit cells (the image's long side divided by the logit grid's side), so a setting
carries over between image sizes. On images whose long side exceeds ``max_side`` the coefficients are
computed at that size and upsampled (He and Sun's "fast guided filter"), which keeps a click cheap on
large photos.
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
    radius: float = 2.0
    eps: float = 1e-3
    max_side: int = 640

    @property
    def active(self) -> bool:
        return self.method == GUIDED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def box_mean(x, r: int):
    """Mean over a (2r+1)^2 window of the last two axes, windows clipped at the border (integral image)."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    integral = F.pad(x, (1, 0, 1, 0)).cumsum(-1).cumsum(-2)
    dev = x.device
    y0 = torch.clamp(torch.arange(h, device=dev) - r, min=0)
    y1 = torch.clamp(torch.arange(h, device=dev) + r + 1, max=h)
    x0 = torch.clamp(torch.arange(w, device=dev) - r, min=0)
    x1 = torch.clamp(torch.arange(w, device=dev) + r + 1, max=w)
    rows1, rows0 = integral.index_select(-2, y1), integral.index_select(-2, y0)
    total = (
        rows1.index_select(-1, x1)
        - rows1.index_select(-1, x0)
        - rows0.index_select(-1, x1)
        + rows0.index_select(-1, x0)
    )
    count = (y1 - y0)[:, None] * (x1 - x0)[None, :]
    return total / count.to(x.dtype)


class Guide:
    """The image-only half of the guided filter for one image, computed once per image."""

    def __init__(self, image: np.ndarray, refinement: Refinement, logit_side: int) -> None:
        import torch
        import torch.nn.functional as F

        height, width = image.shape[:2]
        self.size = (height, width)
        full = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).to(torch.float32) / 255.0
        scale = min(1.0, refinement.max_side / max(height, width))
        self.work = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = full if scale == 1.0 else F.interpolate(full[None], self.work, mode="area")[0]
        self.full, self.small = full, small
        cell = max(self.work) / logit_side  # working-size pixels per logit cell
        self.r = max(1, round(refinement.radius * cell))
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


def refine_masks(logits, guide: Guide):
    """Boolean masks (N x H x W) from full-size mask logits (N x H x W) through the guided filter."""
    import torch

    return guide.filter(torch.sigmoid(logits.float())) > 0.5
