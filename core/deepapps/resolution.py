"""Model resolution, once, for every verb: a name, an alias, a path or a hub id -> :class:`ModelRef`.

``deepapps run``, ``train``, ``eval``, ``bench``, ``pull``, the Python API and the UI all call
:func:`resolve_model`; plugins receive the :class:`ModelRef` and never look names up again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelNotAvailableError, UnknownNameError
from .specs import ModelSpec, TaskSpec

WEIGHT_SUFFIXES = (".pt", ".pth", ".yaml", ".yml", ".safetensors", ".onnx", ".gguf", ".bin", ".ckpt", ".json")
_HUB_ID = re.compile(r"^(hf:)?[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelRef:
    """What a user's ``--model`` names, told apart once.

    ``kind`` is ``registered`` (``spec`` is set), ``path`` (a local file or folder that exists),
    or ``hub`` (``hub_id``, a ``owner/name`` reference for a model hub). ``name`` is what results
    report. ``path`` is the local weights file of a registered model (pulled or bundled) or the
    user's path; it raises with the pull command when a registered model is not on disk.
    """

    kind: str
    name: str
    spec: ModelSpec | None = None
    local_path: Path | None = None
    hub_id: str | None = None

    @property
    def path(self) -> Path:
        if self.kind == "path" and self.local_path is not None:
            return self.local_path
        if self.kind == "registered" and self.spec is not None:
            from .runtime.pull import model_path

            return Path(model_path(self.spec))
        raise ModelNotAvailableError(
            f"model {self.name!r} is a hub reference with no local file; run `deepapps pull {self.name}` "
            "where the hub is reachable, or pass a local path"
        )

    @property
    def key(self) -> str:
        """Stable identity for caching: the spec name, the resolved path or the hub id."""
        if self.kind == "registered":
            return f"registered:{self.name}"
        if self.kind == "path":
            return f"path:{self.local_path}"
        return f"hub:{self.hub_id}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "path": str(self.local_path or "") or None,
                "hub_id": self.hub_id}

    def __str__(self) -> str:
        return self.name


def resolve_model(task: TaskSpec | str, model: str | os.PathLike | ModelRef | ModelSpec | None = None,
                  allow_missing_file: bool = False) -> ModelRef:
    """Resolve ``model`` for ``task`` (None -> the task's default model).

    A registered name or alias becomes its spec (it must belong to ``task``); an existing path a
    ``path`` reference; ``owner/name`` (or ``hf:owner/name``) that is not a local path a ``hub``
    reference. Anything else is an unknown name, answered with the task's models, closest first.
    ``allow_missing_file`` lets ``train`` name a file it will create or an architecture file.
    """
    from .registry import registry

    spec = registry.task(task) if isinstance(task, str) else task
    if isinstance(model, ModelRef):
        return model
    if isinstance(model, ModelSpec):
        return _registered(spec, model)
    name = os.fspath(model) if model is not None else spec.default_model
    if not name:
        raise ModelNotAvailableError(f"task {spec.name!r} has no default model; pass --model NAME_OR_PATH")
    if registry.has_model(name):
        return _registered(spec, registry.model(name))
    path = Path(name).expanduser()
    if path.exists():
        return ModelRef(kind="path", name=str(path), local_path=path.resolve())
    if _HUB_ID.match(name) and not name.endswith(WEIGHT_SUFFIXES):
        hub_id = name.removeprefix("hf:")
        return ModelRef(kind="hub", name=hub_id, hub_id=hub_id)
    if allow_missing_file and name.endswith(WEIGHT_SUFFIXES):
        return ModelRef(kind="path", name=name, local_path=path)
    valid = [m.name for m in registry.models(spec.name, components=False)]
    if name.endswith(WEIGHT_SUFFIXES) or os.sep in name:
        raise ModelNotAvailableError(
            f"model file {name!r} does not exist; pass an existing file, or a registered model "
            f"for {spec.name!r}: {', '.join(valid) or '(none)'}"
        )
    raise UnknownNameError(f"model for task {spec.name!r}", name, valid, also=registry.model_aliases(spec.name))


def _registered(task: TaskSpec, mspec: ModelSpec) -> ModelRef:
    if mspec.task != task.name or mspec.component:
        from .registry import registry

        valid = [m.name for m in registry.models(task.name, components=False)]
        role = f"the {mspec.task!r} task's {mspec.component}" if mspec.component else f"a model for task {mspec.task!r}"
        raise UnknownNameError(f"model for task {task.name!r}", mspec.name, valid, note=f"{mspec.name!r} is {role}")
    return ModelRef(kind="registered", name=mspec.name, spec=mspec)
