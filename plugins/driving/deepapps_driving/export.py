"""Export stable-baselines3 policies to plain torch modules (then safetensors), never pickles.

sb3 saves ``.zip`` files holding pickled objects; we copy the weights of the parts that act
(the SAC/TQC actor's ``latent_pi`` and ``mu``, the DQN's ``q_net``) into a ``torch.nn.Sequential``
described by an ``arch`` dict, which :func:`deepapps_driving.policies.build_network` rebuilds.
"""

from __future__ import annotations

from deepapps import InputError


def _linear_layers(module) -> list:
    import torch.nn as nn

    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _check_relu(module) -> None:
    import torch.nn as nn

    acts = {type(m) for m in module.modules() if not isinstance(m, (nn.Linear, nn.Sequential, nn.Flatten))}
    if acts - {nn.ReLU}:
        raise InputError(
            f"cannot export: activations {sorted(a.__name__ for a in acts)}; only ReLU MLPs are supported"
        )


def _copy(layers, arch: dict):
    import torch

    from .policies import build_network

    network = build_network(arch)
    targets = [m for m in network if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for dst, src in zip(targets, layers, strict=True):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
    return network


def export_actor(model) -> tuple[object, dict]:
    """(network, arch) reproducing a SAC/TQC actor's deterministic action, tanh(mu(latent_pi(x)))."""
    actor = model.policy.actor
    _check_relu(actor.latent_pi)
    layers = _linear_layers(actor.latent_pi) + [actor.mu]
    arch = {
        "kind": "mlp",
        "inputs": layers[0].in_features,
        "hidden": [m.out_features for m in layers[:-1]],
        "outputs": actor.mu.out_features,
        "output": "tanh",
        "source": type(model).__name__,
    }
    return _copy(layers, arch), arch


def export_q_network(model) -> tuple[object, dict]:
    """(network, arch) reproducing a DQN's greedy action, argmax(q_net(flatten(x)))."""
    q_net = model.policy.q_net.q_net
    _check_relu(q_net)
    layers = _linear_layers(q_net)
    arch = {
        "kind": "mlp",
        "inputs": layers[0].in_features,
        "hidden": [m.out_features for m in layers[:-1]],
        "outputs": layers[-1].out_features,
        "output": "argmax",
        "source": type(model).__name__,
    }
    return _copy(layers, arch), arch


def export_shielded_q_network(model) -> tuple[object, dict]:
    """A DQN trained inside the lane-change safety shield: the arch names the shield, so the loaded
    policy applies it too (:mod:`deepapps_driving.shield`)."""
    from .shield import Shield

    network, arch = export_q_network(model)
    arch["shield"] = Shield().describe()
    return network, arch


def export_rate_actor(model) -> tuple[object, dict]:
    """(network, arch) of a SAC actor trained on :class:`~.envs.cruise.JerkAction`: its output is a
    jerk command, which the policy integrates from the observed acceleration (``output: rate``)."""
    from .envs.cruise import ACCEL_OBS_INDEX, JERK_MAX, RATE_LIMIT

    network, arch = export_actor(model)
    arch.update(
        {"output": "rate", "rate_of": ACCEL_OBS_INDEX, "rate_limit": RATE_LIMIT, "jerk_max": JERK_MAX}
    )
    return network, arch
