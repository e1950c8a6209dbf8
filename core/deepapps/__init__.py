"""deepapps: deep learning's landmark applications, runnable and pluggable.

``import deepapps`` stays light: no torch, no model library. Use :func:`load` to get
a runner for a task, and the listing functions to see what the plugins registered.
"""

from __future__ import annotations

import os
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
from .options import Option, OptionError
from .plugins import get_plugins, register_plugin, unregister_plugin
from .registry import registry
from .resolution import ModelRef, resolve_model
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
    "ModelRef",
    "ModelSpec",
    "Option",
    "OptionError",
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
    "clear_cache",
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


def load(
    task: str,
    model: str | os.PathLike | ModelRef | None = None,
    device: str = "auto",
    precision: str = "auto",
    cache: bool = True,
    **options: Any,
) -> Runner:
    """A ready runner for ``task``: ``deepapps.load("object-detection")(image)`` -> Result.

    ``model`` is a registered model name or alias, a local path, or a hub id; ``device`` is
    ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; ``precision`` is ``auto`` or one the task
    supports. ``options`` are the task's declared options: load-time ones go to the model, call-time
    ones become this runner's defaults. Everything is checked before the model loads. A runner
    for the same (task, model, device, precision, load options) is built once per process and
    shared (``cache=False`` builds a fresh one).
    """
    from .options import check_options, split_by_when
    from .runtime.device import select_device
    from .runtime.precision import select_precision

    spec = registry.task(task)
    checked = check_options(spec.options, options, f"task {spec.name!r}", fill_defaults=False)
    if spec.check_run_options is not None:
        resolve(spec.check_run_options)(check_options(spec.options, checked, f"task {spec.name!r}"))
    load_opts, call_opts = split_by_when(spec.options, checked)
    for opt in spec.options:
        if opt.when == "load":
            load_opts.setdefault(opt.name, opt.default)
    ref = resolve_model(spec, model)
    resolved_device = select_device(device)
    resolved_precision = select_precision(precision, resolved_device, spec.precisions)
    key = (spec.name, ref.key, resolved_device, resolved_precision, _freeze(load_opts))
    runner = _RUNNERS.get(key) if cache else None
    if runner is None:
        runner = _build_runner(spec, ref, resolved_device, resolved_precision, load_opts)
        if cache:
            _RUNNERS[key] = runner
    return runner.with_defaults(**call_opts) if call_opts else runner


_RUNNERS: dict[tuple, Runner] = {}


def _build_runner(spec: TaskSpec, ref: ModelRef, device: str, precision: str, load_opts: dict) -> Runner:
    import time

    from .runtime.offline import apply_offline_policy

    apply_offline_policy()
    t0 = time.perf_counter()
    runner = resolve(spec.runner)(ref, device, precision, **load_opts)
    runner.load_ms = (time.perf_counter() - t0) * 1e3
    runner._call_options = tuple(o for o in spec.options if o.when == "call")
    return runner


def _freeze(values: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in values.items()))


def clear_cache() -> None:
    """Forget the runners :func:`load` shares (frees their models once nothing else holds them)."""
    _RUNNERS.clear()


def load_dataset(name: str, split: str = "train", **options: Any) -> Any:
    """Load a registered dataset split through its plugin's loader."""
    dspec = registry.dataset(name)
    if split not in dspec.splits:
        raise UnknownNameError(f"split of dataset {name!r}", split, dspec.splits)
    return resolve(dspec.loader)(split, **options)
