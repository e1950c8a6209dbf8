"""deepapps: deep learning's landmark applications, runnable and pluggable.

``import deepapps`` stays light: no torch, no model library. Use :func:`load` to get
a runner for a task, and the listing functions to see what the plugins registered.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    CheckpointError,
    DeepAppsError,
    DeviceError,
    DuplicateNameError,
    InputError,
    ModelNotAvailableError,
    PluginError,
    UnknownNameError,
)
from .hookspecs import hookimpl
from .plugins import get_plugins, register_plugin, unregister_plugin
from .registry import registry
from .results import BenchReport, EvalReport, Result
from .runner import Runner
from .specs import DatasetSpec, ModelCard, ModelSpec, TaskSpec, UIPageSpec, resolve

__version__ = "0.1.0"

__all__ = [
    "BenchReport",
    "CheckpointError",
    "DatasetSpec",
    "DeepAppsError",
    "DeviceError",
    "DuplicateNameError",
    "EvalReport",
    "InputError",
    "ModelCard",
    "ModelNotAvailableError",
    "ModelSpec",
    "PluginError",
    "Result",
    "Runner",
    "TaskSpec",
    "UIPageSpec",
    "UnknownNameError",
    "get_plugins",
    "hookimpl",
    "list_datasets",
    "list_models",
    "list_tasks",
    "load",
    "load_dataset",
    "register_plugin",
    "registry",
    "resolve_model",
    "unregister_plugin",
]


def list_tasks() -> list[TaskSpec]:
    return registry.tasks()


def list_models(task: str | None = None) -> list[ModelSpec]:
    return registry.models(task)


def list_datasets(task: str | None = None) -> list[DatasetSpec]:
    return registry.datasets(task)


def resolve_model(task: str, model: str | None = None) -> tuple[TaskSpec, ModelSpec | str]:
    """The task spec, and the registered ModelSpec for ``model`` (or the raw string: a path or hub id)."""
    import os

    spec = registry.task(task)
    name = model or spec.default_model
    if name is None:
        raise ModelNotAvailableError(f"task {spec.name!r} has no default model; pass model=...")
    if registry.has_model(name):
        mspec = registry.model(name)
        if mspec.task != spec.name:
            valid = [m.name for m in registry.models(spec.name)]
            raise UnknownNameError(
                f"model for task {spec.name!r} (it is a {mspec.task!r} model)", name, valid
            )
        return spec, mspec
    looks_like_path = os.path.sep in name or name.endswith((".pt", ".yaml", ".safetensors", ".onnx", ".gguf"))
    looks_like_hub_id = name.count("/") == 1 and not os.path.exists(name)
    if looks_like_path or looks_like_hub_id or os.path.exists(name):
        return spec, name
    raise UnknownNameError("model", name, [m.name for m in registry.models(spec.name)])


def load(task: str, model: str | None = None, device: str = "auto", **options: Any) -> Runner:
    """A ready runner for ``task``: ``deepapps.load("object-detection")(image)`` -> Result.

    ``model`` is a registered model name, a local path, or a hub id (when online);
    ``device`` is ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    """
    from .runtime.device import select_device

    spec, mspec = resolve_model(task, model)
    resolved_device = select_device(device)
    factory = resolve(spec.runner)
    return factory(mspec, resolved_device, **options)


def load_dataset(name: str, split: str = "train", **options: Any) -> Any:
    """Load a registered dataset split through its plugin's loader."""
    dspec = registry.dataset(name)
    if split not in dspec.splits:
        raise UnknownNameError(f"split of dataset {name!r}", split, dspec.splits)
    return resolve(dspec.loader)(split, **options)
