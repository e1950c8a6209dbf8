"""The shared robot policy: one small actor-critic MLP used by every robot (parameter sharing).

Weights are saved as safetensors with their hyper-parameters in the metadata; nothing is pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .env import OBS_SIZE
from .layout import MOVES

HIDDEN = 128


def build_net(hidden: int = HIDDEN):
    import torch
    from torch import nn

    class ActorCritic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Linear(OBS_SIZE, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
            )
            self.pi = nn.Linear(hidden, len(MOVES))
            self.v = nn.Linear(hidden, 1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.body(x)
            return self.pi(h), self.v(h).squeeze(-1)

    return ActorCritic()


class SharedPolicy:
    """``act(obs_by_agent) -> action_by_agent`` with one network for all robots."""

    def __init__(self, net, device: str = "cpu", greedy: bool = False, seed: int = 0) -> None:
        import torch

        self.net = net.to(device).eval()
        self.device, self.greedy = device, greedy
        self.gen = torch.Generator(device="cpu").manual_seed(seed)

    def reset(self) -> None:
        pass

    def act(self, observations: dict[str, np.ndarray]) -> dict[str, int]:
        import torch

        if not observations:
            return {}
        agents = list(observations)
        x = torch.as_tensor(np.stack([observations[a] for a in agents]), device=self.device)
        with torch.inference_mode():
            logits, _ = self.net(x)
        logits = logits.float().cpu()
        if self.greedy:
            actions = logits.argmax(-1)
        else:
            actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.gen).squeeze(-1)
        return {a: int(v) for a, v in zip(agents, actions.tolist(), strict=True)}


def save_policy(net, path: Path, metadata: dict[str, Any]) -> Path:
    from deepapps.runtime.checkpoint import save_checkpoint

    tensors = {k: v.detach().cpu().float().contiguous() for k, v in net.state_dict().items()}
    return save_checkpoint(
        path, tensors, {"format": "deepapps-warehouse-v1", "obs_size": OBS_SIZE, "hidden": HIDDEN, **metadata}
    )


def load_policy(path: Path, device: str = "cpu"):
    """The network from a :func:`save_policy` file (checked shapes, no pickle)."""
    from deepapps.errors import CheckpointError
    from deepapps.runtime.checkpoint import load_checkpoint

    tensors, metadata = load_checkpoint(path)
    if metadata.get("format") != "deepapps-warehouse-v1" or int(metadata.get("obs_size", -1)) != OBS_SIZE:
        raise CheckpointError(
            f"{path}: not a deepapps warehouse policy for this observation "
            f"(format {metadata.get('format')!r}, obs_size {metadata.get('obs_size')})"
        )
    net = build_net(int(metadata.get("hidden", HIDDEN)))
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the policy network: {exc}") from None
    return net.to(device).eval(), metadata
