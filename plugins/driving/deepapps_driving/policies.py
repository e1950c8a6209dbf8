"""Learned policies: their networks, safetensors files and ``act(obs)``.

A policy file is a safetensors checkpoint (never a pickle) whose metadata says which task and
observation shape it is for and how to rebuild the network (``arch``). Policies trained with
stable-baselines3 are exported the same way: the weights of the deterministic actor (or the
Q-network) are copied into the plain torch modules below, which reproduce sb3's forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepapps import InputError

from . import catalog
from .controllers import Policy

FORMAT = "deepapps-driving-policy/1"


def build_network(arch: dict):
    """A torch module from its description: ``pilotnet`` or ``mlp``."""
    import torch.nn as nn

    if arch["kind"] == "pilotnet":
        return PilotNet(arch.get("channels", catalog.FRAME_STACK), arch.get("width", 1.0))
    if arch["kind"] == "mlp":
        sizes = [arch["inputs"], *arch["hidden"], arch["outputs"]]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)
    raise InputError(f"unknown policy network kind {arch['kind']!r}; expected pilotnet or mlp")


def PilotNet(channels: int = catalog.FRAME_STACK, width: float = 1.0):  # noqa: N802 (a module factory)
    """NVIDIA's PilotNet shape scaled to a 64x64 frame stack: 5 convolutions, then 100-50-10-1 dense
    layers; the output is the steering command in [-1, 1] (tanh)."""
    import torch.nn as nn

    def c(n: int) -> int:
        return max(4, int(n * width))

    return nn.Sequential(
        nn.Conv2d(channels, c(24), 5, stride=2),
        nn.ELU(),  # 30x30
        nn.Conv2d(c(24), c(36), 5, stride=2),
        nn.ELU(),  # 13x13
        nn.Conv2d(c(36), c(48), 3, stride=2),
        nn.ELU(),  # 6x6
        nn.Conv2d(c(48), c(64), 3),
        nn.ELU(),  # 4x4
        nn.Conv2d(c(64), c(64), 3),
        nn.ELU(),  # 2x2
        nn.Flatten(),
        nn.Linear(c(64) * 4, 100),
        nn.ELU(),
        nn.Linear(100, 50),
        nn.ELU(),
        nn.Linear(50, 10),
        nn.ELU(),
        nn.Linear(10, 1),
        nn.Tanh(),
    )


def flatten_obs(obs: Any, task: str) -> np.ndarray:
    """The network input of one observation as float32: frames scaled to [0, 1]; a goal dict as
    sb3's order (achieved_goal, desired_goal, observation); anything else flattened."""
    info = catalog.info(task)
    if task == catalog.PARKING:
        if not isinstance(obs, dict) or not {"achieved_goal", "desired_goal", "observation"} <= set(obs):
            raise InputError(
                "a parking policy acts on parking-v0's dict observation "
                "(observation, achieved_goal, desired_goal)"
            )
        return np.concatenate(
            [
                np.asarray(obs[k], dtype=np.float32).reshape(-1)
                for k in ("achieved_goal", "desired_goal", "observation")
            ]
        )
    array = np.asarray(obs)
    if array.shape != info.obs_shape:
        raise InputError(
            f"observation of shape {array.shape}; a {task} policy expects {info.obs_shape} "
            f"({info.obs_summary}), as {info.variants[0].env_id} returns"
        )
    if task == catalog.LANE_KEEPING:
        return array.astype(np.float32) / 255.0
    return array.astype(np.float32).reshape(-1)


class NetworkPolicy(Policy):
    """A learned policy: ``act(obs)`` runs the network (no gradient) and decodes its output."""

    def __init__(
        self,
        task: str,
        name: str,
        network,
        arch: dict,
        metadata: dict | None = None,
        device: str = "cpu",
        shielded: bool = True,
    ) -> None:
        self.task, self.name, self.arch = task, name, arch
        self.network = network.to(device).eval()
        self.device = device
        self.metadata = metadata or {}
        self.shield = None  # a lane-change DQN trained inside the safety shield acts through it
        if arch.get("shield") and shielded:
            from .shield import Shield

            self.shield = Shield.from_arch(arch["shield"])

    def act(self, obs, info: dict | None = None):
        import torch

        x = torch.as_tensor(flatten_obs(obs, self.task), device=self.device).unsqueeze(0)
        with torch.inference_mode():
            out = self.network(x)[0].float().cpu().numpy()
        decode = self.arch.get("output", "identity")
        if decode == "rate":  # the network commands the jerk; the action is the new acceleration
            return self._rate_limited(obs, float(out[0]))
        if decode == "argmax":
            action = int(np.argmax(out))
            if self.shield is None:
                return action
            return self.shield.filter(obs, action, ranking=np.argsort(-out, kind="stable"))
        if decode == "tanh":
            return np.tanh(out).astype(np.float32)
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def reset(self) -> None:
        if self.shield is not None:
            self.shield.reset()

    def _rate_limited(self, obs, command: float) -> np.ndarray:
        from .envs.cruise import rate_limited

        current = float(flatten_obs(obs, self.task)[self.arch["rate_of"]])
        return np.array([rate_limited(current, np.tanh(command), self.arch["rate_limit"])], dtype=np.float32)

    def parameters(self) -> int:
        return int(sum(p.numel() for p in self.network.parameters()))


def save_policy(path: str | Path, task: str, network, arch: dict, extra: dict | None = None) -> Path:
    """Write a policy file: weights plus the metadata that rebuilds and checks it."""
    from deepapps.runtime.checkpoint import save_checkpoint

    meta = {
        "format": FORMAT,
        "task": task,
        "obs_shape": list(catalog.info(task).obs_shape),
        "arch": arch,
        **(extra or {}),
    }
    return save_checkpoint(path, network.state_dict(), meta)


def load_policy(
    path: str | Path, task: str, name: str | None = None, device: str = "cpu", shielded: bool = True
) -> NetworkPolicy:
    """A policy file for ``task``; a file for another task or observation shape is a one-line error.
    ``shielded=False`` drops the safety shield a lane-change file names (to measure the DQN alone)."""
    from deepapps.runtime.checkpoint import load_checkpoint, read_metadata

    path = Path(path)
    if path.suffix != ".safetensors":
        raise InputError(
            f"policy file {path.name}: expected a .safetensors policy (deepapps never unpickles "
            "sb3 .zip/.pt files); export it with deepapps_driving.export"
        )
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise InputError(f"policy file {path.name} is not a deepapps driving policy (no {FORMAT} metadata)")
    if meta.get("task") != task:
        raise InputError(
            f"policy file {path.name} is for task {meta.get('task')!r}, not {task!r}; pass a {task} policy"
        )
    expected = list(catalog.info(task).obs_shape)
    if list(meta.get("obs_shape", [])) != expected:
        raise InputError(
            f"policy file {path.name} expects observations of shape {meta.get('obs_shape')}, "
            f"but {task} gives {expected}"
        )
    tensors, _ = load_checkpoint(path)
    network = build_network(meta["arch"])
    try:
        network.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(
            f"policy file {path.name}: weights do not fit its declared network ({first})"
        ) from exc
    return NetworkPolicy(task, name or path.stem, network, meta["arch"], meta, device, shielded)
