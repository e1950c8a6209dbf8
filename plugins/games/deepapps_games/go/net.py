"""The policy-value residual network and its batched evaluator.

Fully convolutional, so one set of weights runs on any board size: the policy is a 1×1 conv per
point plus a pass logit from global pooling; the value (and the optional ownership head, one of
KataGo's auxiliary targets) come from the same trunk. Inputs are :func:`features` planes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .board import BLACK, Board

IN_PLANES = 2 * (Board.HISTORY + 1) + 2


def features(board: Board) -> np.ndarray:
    """Input planes ``(IN_PLANES, N, N)`` from the side to move's view.

    own/opponent stones now and in the last 3 positions (8 planes), a "black to move" plane and a
    plane of ones (so zero padding marks the edge).
    """
    n = board.n
    me = board.to_play
    out = np.zeros((IN_PLANES, n * n), dtype=np.float32)
    s = np.asarray(board.stones, dtype=np.int8)
    out[0] = s == me
    out[1] = s == -me
    for k, past in enumerate(board.history[: Board.HISTORY]):
        p = np.asarray(past, dtype=np.int8)
        out[2 + 2 * k] = p == me
        out[3 + 2 * k] = p == -me
    if me == BLACK:
        out[IN_PLANES - 2] = 1.0
    out[IN_PLANES - 1] = 1.0
    return out.reshape(IN_PLANES, n, n)


@dataclass
class NetConfig:
    """Network size: ``blocks`` residual blocks of ``channels`` channels (small default for CPU)."""

    blocks: int = 4
    channels: int = 32
    ownership: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(x + y)


class GoNet(nn.Module):
    """Residual trunk with policy (N²+1 logits), value (tanh) and ownership (N², tanh) heads."""

    def __init__(self, config: NetConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetConfig()
        c = self.config.channels
        self.stem = nn.Sequential(
            nn.Conv2d(IN_PLANES, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()
        )
        self.trunk = nn.Sequential(*[_ResBlock(c) for _ in range(self.config.blocks)])
        self.policy_conv = nn.Sequential(nn.Conv2d(c, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.policy_point = nn.Conv2d(8, 1, 1)
        self.policy_pass = nn.Linear(2 * 8, 1)
        self.value_fc = nn.Sequential(nn.Linear(2 * c, 64), nn.ReLU(), nn.Linear(64, 1))
        self.ownership = nn.Conv2d(c, 1, 1) if self.config.ownership else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        h = self.trunk(self.stem(x))
        p = self.policy_conv(h)
        point_logits = self.policy_point(p).flatten(1)
        pooled_p = torch.cat([p.mean((2, 3)), p.amax((2, 3))], 1)
        logits = torch.cat([point_logits, self.policy_pass(pooled_p)], 1)
        pooled = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
        value = torch.tanh(self.value_fc(pooled)).squeeze(1)
        own = torch.tanh(self.ownership(h)).flatten(1) if self.ownership is not None else None
        return logits, value, own


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def fuse_for_inference(net: GoNet) -> GoNet:
    """A copy of ``net`` with every BatchNorm folded into the conv before it (same outputs in eval
    mode, fewer ops per call: inference on small batches is dominated by per-op overhead)."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if getattr(net, "fused", False):
        return net
    fused = copy.deepcopy(net).eval()
    fused.fused = True

    def fold(seq: nn.Sequential) -> None:
        conv, bn = seq[0], seq[1]
        seq[0] = fuse_conv_bn_eval(conv, bn)
        seq[1] = nn.Identity()

    fold(fused.stem)
    fold(fused.policy_conv)
    for blk in fused.trunk:
        blk.c1 = fuse_conv_bn_eval(blk.c1, blk.b1)
        blk.b1 = nn.Identity()
        blk.c2 = fuse_conv_bn_eval(blk.c2, blk.b2)
        blk.b2 = nn.Identity()
    return fused


class Evaluator:
    """Runs a :class:`GoNet` on lists of boards: ``(priors over legal moves, values)`` per board.

    The network is BatchNorm-folded for inference (``fuse=False`` keeps it as is). Counts forward
    passes and positions so benchmarks can report what was evaluated.
    """

    def __init__(self, net: GoNet, device: str = "cpu", fuse: bool = True) -> None:
        net = net.eval()
        self.net = (fuse_for_inference(net) if fuse else net).to(device).eval()
        self.device = device
        self.calls = 0
        self.positions = 0

    @torch.inference_mode()
    def raw(self, boards: list[Board]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        x = torch.from_numpy(np.stack([features(b) for b in boards])).to(self.device)
        logits, value, own = self.net(x)
        self.calls += 1
        self.positions += len(boards)
        own_np = own.float().cpu().numpy() if own is not None else None
        return logits.float().cpu().numpy(), value.float().cpu().numpy(), own_np

    def __call__(self, boards: list[Board], masks: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """Softmax priors restricted to each board's legal moves (``masks``: index arrays) and values."""
        logits, values, _ = self.raw(boards)
        priors = []
        for lg, idx in zip(logits, masks, strict=True):
            z = lg[idx]
            z = np.exp(z - z.max())
            priors.append(z / z.sum())
        return priors, values


def save_net(path: str | Path, net: GoNet, metadata: dict[str, Any] | None = None) -> Path:
    """Safetensors checkpoint with the network config in its metadata (via deepapps.runtime)."""
    from deepapps.runtime import save_checkpoint

    meta = {"kind": "go-policy-value", "config": net.config.to_dict(), **(metadata or {})}
    return save_checkpoint(path, net.state_dict(), meta)


def load_net(path: str | Path, device: str = "cpu") -> tuple[GoNet, dict[str, Any]]:
    """Load a :func:`save_net` checkpoint; raises ``CheckpointError`` for damaged or foreign files."""
    from deepapps.errors import CheckpointError
    from deepapps.runtime import load_checkpoint

    tensors, meta = load_checkpoint(path, device="cpu")
    if meta.get("kind") != "go-policy-value":
        raise CheckpointError(f"{path} is not a deepapps Go network (metadata kind={meta.get('kind')!r})")
    net = GoNet(NetConfig(**meta["config"]))
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match its own network config: {str(exc)[:300]}") from exc
    return net.to(device).eval(), meta
