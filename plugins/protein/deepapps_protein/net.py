"""The bundled model's network: a 1D residual CNN over the sequence and a 2D residual CNN over pairs.

1D trunk (dilated residual convolutions) -> secondary structure (3 states) per residue.
Pair features (the two residues' projections, their product, and an embedding of the sequence
separation) -> 2D trunk (dilated residual convolutions) -> Cα-Cα distance bins, symmetrised.
Sizes live in a plain dict saved with the weights, so a checkpoint rebuilds its own network.
"""

from __future__ import annotations

import torch
from torch import nn

from .features import N_BINS, N_FEATURES

DEFAULT_CONFIG = {
    "features": N_FEATURES,
    "channels": 64,
    "dilations_1d": [1, 2, 4, 8, 1, 2],
    "pair_channels": 24,
    "dilations_2d": [1, 2, 4, 8, 1],
    "bins": N_BINS,
    "dropout": 0.3,
    "separation_buckets": 24,
}


class Residual1d(nn.Module):
    def __init__(self, ch: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8, ch),
            nn.ELU(),
            nn.Conv1d(ch, ch, 5, padding=2 * dilation, dilation=dilation),
            nn.Dropout(dropout),
            nn.GroupNorm(8, ch),
            nn.ELU(),
            nn.Conv1d(ch, ch, 5, padding=2 * dilation, dilation=dilation),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Residual2d(nn.Module):
    def __init__(self, ch: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(4, ch),
            nn.ELU(),
            nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation),
            nn.Dropout(dropout),
            nn.GroupNorm(4, ch),
            nn.ELU(),
            nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def separation_bucket(sep: torch.Tensor, buckets: int) -> torch.Tensor:
    """|i-j| to a bucket: exact up to 12, then logarithmic up to ``buckets - 1``."""
    sep = sep.abs().float()
    log_part = 12 + torch.log2(sep.clamp(min=12) / 12) * 3
    return torch.where(sep < 12, sep, log_part).long().clamp(max=buckets - 1)


class FoldNet(nn.Module):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__()
        c = {**DEFAULT_CONFIG, **(config or {})}
        self.config = c
        ch, pc, drop = c["channels"], c["pair_channels"], c["dropout"]
        self.embed = nn.Conv1d(c["features"], ch, 1)
        self.trunk1d = nn.Sequential(*[Residual1d(ch, d, drop) for d in c["dilations_1d"]])
        self.ss_head = nn.Sequential(nn.GroupNorm(8, ch), nn.ELU(), nn.Conv1d(ch, 3, 1))
        self.left = nn.Conv1d(ch, pc, 1)
        self.right = nn.Conv1d(ch, pc, 1)
        self.separation = nn.Embedding(c["separation_buckets"], pc)
        self.pair_in = nn.Conv2d(3 * pc, pc, 1)
        self.trunk2d = nn.Sequential(*[Residual2d(pc, d, drop) for d in c["dilations_2d"]])
        self.dist_head = nn.Sequential(nn.GroupNorm(4, pc), nn.ELU(), nn.Conv2d(pc, c["bins"], 1))

    def forward(
        self, feats: torch.Tensor, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats``: 1 x F x L. Returns SS logits (1 x 3 x L) and distance logits (1 x B x R x C)
        for residues ``rows`` x ``cols`` (all by default; a crop while training)."""
        h = self.trunk1d(self.embed(feats))
        ss = self.ss_head(h)
        length = feats.shape[-1]
        rows = torch.arange(length, device=feats.device) if rows is None else rows
        cols = torch.arange(length, device=feats.device) if cols is None else cols
        left, right = self.left(h)[..., rows], self.right(h)[..., cols]
        a = left[..., :, None].expand(-1, -1, len(rows), len(cols))
        b = right[..., None, :].expand(-1, -1, len(rows), len(cols))
        sep = separation_bucket(rows[:, None] - cols[None, :], self.config["separation_buckets"])
        s = self.separation(sep).permute(2, 0, 1)[None]
        pair = self.pair_in(torch.cat([a + b, a * b, s.expand(a.shape[0], -1, -1, -1)], dim=1))
        return ss, self.dist_head(self.trunk2d(pair))

    def predict(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SS probabilities (L x 3) and symmetric distance-bin probabilities (L x L x B)."""
        ss, dist = self.forward(feats)
        dist = 0.5 * (dist + dist.transpose(-1, -2))
        return ss[0].softmax(0).T, dist[0].softmax(0).permute(1, 2, 0)
