"""The policy-value residual network and its batched evaluator.

Fully convolutional, so one set of weights runs on any board size: the policy is a 1×1 conv per
point plus a pass logit from global pooling; the value (and the optional ownership head, one of
KataGo's auxiliary targets) come from the same trunk. Inputs are :func:`features` planes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .board import BLACK, EMPTY, Board

IN_PLANES = 2 * (Board.HISTORY + 1) + 2


def features(board: Board) -> np.ndarray:
    """Input planes ``(IN_PLANES, N, N)`` from the side to move's view.

    own/opponent stones now and in the last 3 positions (8 planes), a "black to move" plane and a
    plane of ones (so zero padding marks the edge).
    """
    n = board.n
    n2 = n * n
    me = board.to_play
    hist = board.history
    H = Board.HISTORY
    if len(hist) >= H:
        s = np.array((board.stones, *hist[:H]), dtype=np.int8)
    else:  # early in the game: missing past positions are empty boards
        s = np.zeros((H + 1, n2), dtype=np.int8)
        s[: len(hist) + 1] = (board.stones, *hist)
    out = np.zeros((IN_PLANES, n2), dtype=np.float32)
    out[0 : 2 * H + 2 : 2] = s == me
    out[1 : 2 * H + 2 : 2] = s == -me
    if me == BLACK:
        out[IN_PLANES - 2] = 1.0
    out[IN_PLANES - 1] = 1.0
    return out.reshape(IN_PLANES, n, n)


def features_batch(boards: list[Board]) -> np.ndarray:
    """:func:`features` of every board stacked, ``(B, IN_PLANES, N, N)`` float32, built with one
    array conversion and a few whole-batch numpy operations (the per-board way costs ~3× more)."""
    if len(boards) == 1:
        return features(boards[0])[None]
    n = boards[0].n
    n2 = n * n
    H = Board.HISTORY
    B = len(boards)
    empty = (EMPTY,) * n2
    rows: list = []
    for b in boards:
        if b.n != n:
            raise ValueError(f"boards of different sizes in one batch ({n} and {b.n})")
        hist = b.history
        rows.append(b.stones)
        if len(hist) >= H:
            rows.extend(hist[:H])
        else:
            rows.extend(hist)
            rows.extend([empty] * (H - len(hist)))
    s = np.fromiter(chain.from_iterable(rows), dtype=np.int8, count=B * (H + 1) * n2).reshape(B, H + 1, n2)
    me = np.fromiter((b.to_play for b in boards), dtype=np.int8, count=B)
    out = np.empty((B, IN_PLANES, n2), dtype=np.float32)
    out[:, 0 : 2 * H + 2 : 2] = s == me[:, None, None]
    out[:, 1 : 2 * H + 2 : 2] = s == -me[:, None, None]
    out[:, IN_PLANES - 2] = (me == BLACK)[:, None]
    out[:, IN_PLANES - 1] = 1.0
    return out.reshape(B, IN_PLANES, n, n)


def masked_priors(logits: np.ndarray, masks: list) -> list[np.ndarray]:
    """Softmax of each row of ``logits`` restricted to the indices in ``masks`` (one per row):
    float32 priors over exactly those moves, in their order. One set of whole-batch numpy operations
    for a batch, a short per-row path for a single position."""
    B = len(masks)
    if B == 1:
        z = logits[0][masks[0]]
        z = np.exp(z - z.max())
        return [z / z.sum()]
    lens = [len(m) for m in masks]
    total = sum(lens)
    rows = np.repeat(np.arange(B), lens)
    cols = np.fromiter(chain.from_iterable(masks), dtype=np.int64, count=total)
    z = np.full(logits.shape, -np.inf, dtype=np.float32)
    z[rows, cols] = logits[rows, cols]
    z -= z.max(1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(1, keepdims=True)
    flat = z[rows, cols]
    out = []
    i = 0
    for k in lens:
        out.append(flat[i : i + k])
        i += k
    return out


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

    ``precision="bf16"`` runs the network in bfloat16 with channels-last tensors: on CPUs with
    bf16 matrix units (AMX, AVX512-BF16) a batch of leaves is several times faster, a single
    position slower; outputs are returned as float32 either way.
    """

    def __init__(self, net: GoNet, device: str = "cpu", fuse: bool = True, precision: str = "fp32") -> None:
        from deepapps.runtime.precision import resolve_dtype

        net = net.eval()
        self.dtype = resolve_dtype(precision, device)
        self.net = (fuse_for_inference(net) if fuse else net).to(device).eval()
        self.channels_last = self.dtype != torch.float32
        if self.channels_last:
            self.net = self.net.to(self.dtype).to(memory_format=torch.channels_last)
        self.device = device
        self.calls = 0
        self.positions = 0

    @torch.inference_mode()
    def raw(self, boards: list[Board]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        x = torch.from_numpy(features_batch(boards))
        if self.device != "cpu":
            x = x.to(self.device)
        if self.channels_last:
            x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        logits, value, own = self.net(x)
        self.calls += 1
        self.positions += len(boards)
        own_np = own.float().cpu().numpy() if own is not None else None
        return logits.float().cpu().numpy(), value.float().cpu().numpy(), own_np

    def __call__(self, boards: list[Board], masks: list) -> tuple[list[np.ndarray], np.ndarray]:
        """Softmax priors restricted to each board's legal moves (``masks``: index lists or arrays) and values."""
        logits, values, _ = self.raw(boards)
        return masked_priors(logits, masks), values


def net_payload(net: GoNet, metadata: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tensors, metadata)`` of a network checkpoint, the config in the metadata (what :func:`load_net` reads)."""
    return net.state_dict(), {"kind": "go-policy-value", "config": net.config.to_dict(), **(metadata or {})}


def save_net(path: str | Path, net: GoNet, metadata: dict[str, Any] | None = None) -> Path:
    """Safetensors checkpoint with the network config in its metadata (via deepapps.runtime)."""
    from deepapps.runtime import save_checkpoint

    return save_checkpoint(path, *net_payload(net, metadata))


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
