"""The registry: what every loaded plugin registered; a plugin that clashes or misbehaves is dropped whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import DuplicateNameError, PluginError, UnknownNameError
from .specs import DatasetSpec, ModelSpec, TaskSpec, UIPageSpec

SPEC_TYPES: dict[str, type] = {
    "register_tasks": TaskSpec,
    "register_models": ModelSpec,
    "register_datasets": DatasetSpec,
    "register_ui_pages": UIPageSpec,
}


@dataclass
class _Tables:
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    task_aliases: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    model_aliases: dict[str, str] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    ui_pages: dict[str, UIPageSpec] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin


class Registry:
    """Built on first use from the plugin hooks; rebuilt when plugins change.

    Each plugin is handled in isolation: its hooks run, then what it registered is type-checked
    and its names claimed, all or nothing. A plugin that raises, passes the wrong type or claims
    a taken name is marked failed (with the reason) and contributes nothing; the others stay usable.
    """

    def __init__(self) -> None:
        self._tables: _Tables | None = None
        self._building = False

    def invalidate(self) -> None:
        from .plugins import LOCK

        with LOCK:
            self._tables = None

    @property
    def tables(self) -> _Tables:
        from .plugins import LOCK

        with LOCK:
            if self._tables is None:
                self._tables = self._build()
            return self._tables

    def _build(self) -> _Tables:
        from .plugins import load_plugins, ordered_plugin_names

        load_plugins()
        if self._building:
            raise PluginError("a registration hook read the registry; hooks may only call register(...)")
        self._building = True
        try:
            batches = self._collect()
            t = _Tables()
            for plugin_name in ordered_plugin_names(set(batches)):
                self._claim_batch(t, plugin_name, batches[plugin_name])
            return t
        finally:
            self._building = False

    @staticmethod
    def _collect() -> dict[str, list[Any]]:
        """Run every registration hook, each plugin guarded; a plugin that fails is dropped whole."""
        from .plugins import fail_plugin, pm

        collected: dict[str, list[Any]] = {}
        failed: set[str] = set()
        for hook_name, expected in SPEC_TYPES.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name in failed:
                    continue
                try:
                    specs = _run_hook(impl, hook_name)
                    for spec in specs:
                        if not isinstance(spec, expected):
                            raise PluginError(
                                f"passed {type(spec).__name__} to {hook_name}; expected {expected.__name__}"
                            )
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # SystemExit too: the host keeps running
                    failed.add(impl.plugin_name)
                    collected.pop(impl.plugin_name, None)
                    fail_plugin(impl.plugin_name, exc, hook_name)
                    continue
                collected.setdefault(impl.plugin_name, []).extend(specs)
        return collected

    def _claim_batch(self, t: _Tables, plugin: str, specs: list[Any]) -> None:
        """Claim every name of one plugin, or none: a clash fails the plugin, naming both sides."""
        from .plugins import fail_plugin

        try:
            claims = [(spec, kind, name) for spec in specs for kind, name in _names(spec)]
            seen: set[tuple[str, str]] = set()
            for _spec, kind, name in claims:
                owner = t.owners.get((kind, name)) or (plugin if (kind, name) in seen else None)
                if owner is not None:
                    raise _clash(kind, name, owner, plugin)
                seen.add((kind, name))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            fail_plugin(plugin, exc, "claiming names")
            return
        for spec in specs:
            spec.plugin = plugin
            _add(t, spec)
        for _spec, kind, name in claims:
            t.owners[(kind, name)] = plugin

    # lookups -----------------------------------------------------------------
    def tasks(self) -> list[TaskSpec]:
        return sorted(self.tables.tasks.values(), key=lambda s: s.name)

    def models(self, task: str | None = None, *, components: bool = True) -> list[ModelSpec]:
        """Registered models (of ``task``); ``components=False`` leaves out internal parts
        (``ModelSpec.component``) that are not choices for ``--model``."""
        models = sorted(self.tables.models.values(), key=lambda s: s.name)
        if task is not None:
            task = self.task(task).name
            models = [m for m in models if m.task == task]
        if not components:
            models = [m for m in models if not m.component]
        return models

    def model_aliases(self, task: str | None = None) -> list[str]:
        """Every alias of the (selectable) models of ``task``: "did you mean" may suggest them."""
        return [a for m in self.models(task, components=False) for a in m.aliases]

    def datasets(self, task: str | None = None) -> list[DatasetSpec]:
        sets = sorted(self.tables.datasets.values(), key=lambda s: s.name)
        if task is not None:
            task = self.task(task).name
            sets = [d for d in sets if d.task == task]
        return sets

    def ui_pages(self) -> list[UIPageSpec]:
        return sorted(self.tables.ui_pages.values(), key=lambda s: s.task)

    def task(self, name: str) -> TaskSpec:
        t = self.tables
        name = t.task_aliases.get(name, name)
        if name not in t.tasks:
            raise UnknownNameError("task", name, list(t.tasks) + list(t.task_aliases))
        return t.tasks[name]

    def model(self, name: str, task: str | None = None) -> ModelSpec:
        t = self.tables
        name = t.model_aliases.get(name, name)
        if name not in t.models:
            pool = self.models(task) if task else list(t.models.values())
            raise UnknownNameError("model", name, [m.name for m in pool])
        return t.models[name]

    def has_model(self, name: str) -> bool:
        t = self.tables
        return t.model_aliases.get(name, name) in t.models

    def dataset(self, name: str, task: str | None = None) -> DatasetSpec:
        t = self.tables
        if name not in t.datasets:
            pool = self.datasets(task) if task else list(t.datasets.values())
            raise UnknownNameError("dataset", name, [d.name for d in pool])
        return t.datasets[name]

    def ui_page(self, task: str) -> UIPageSpec | None:
        return self.tables.ui_pages.get(task)


def _run_hook(impl: Any, hook_name: str) -> list[Any]:
    """Call one hook implementation with a ``register`` callback that works only while it runs."""
    specs: list[Any] = []
    open_ = [True]

    def register(spec: Any) -> None:
        if not open_[0]:
            raise PluginError(f"register() was called after {hook_name} returned; register inside the hook")
        specs.append(spec)

    try:
        impl.function(*[register for _ in impl.argnames])
    finally:
        open_[0] = False
    return specs


def _names(spec: Any) -> list[tuple[str, str]]:
    """The (namespace, name) pairs a spec claims; a name and an alias share one namespace."""
    if isinstance(spec, TaskSpec):
        return [("task", spec.name), *(("task", a) for a in spec.aliases)]
    if isinstance(spec, ModelSpec):
        return [("model", spec.name), *(("model", a) for a in spec.aliases)]
    if isinstance(spec, DatasetSpec):
        return [("dataset", spec.name)]
    return [("UI page for task", spec.task)]


def _add(t: _Tables, spec: Any) -> None:
    if isinstance(spec, TaskSpec):
        t.tasks[spec.name] = spec
        t.task_aliases.update({alias: spec.name for alias in spec.aliases})
    elif isinstance(spec, ModelSpec):
        t.models[spec.name] = spec
        t.model_aliases.update({alias: spec.name for alias in spec.aliases})
    elif isinstance(spec, DatasetSpec):
        t.datasets[spec.name] = spec
    else:
        t.ui_pages[spec.task] = spec


def _clash(kind: str, name: str, owner: str, plugin: str) -> DuplicateNameError:
    if owner == plugin:
        return DuplicateNameError(f"plugin {plugin!r} registers {kind} name {name!r} twice")
    return DuplicateNameError(
        f"{kind} name {name!r} is registered by both plugin {owner!r} and plugin {plugin!r}; "
        f"{owner!r} keeps it and {plugin!r} is disabled. Rename one of them or disable a plugin "
        "with DEEPAPPS_LOAD_PLUGINS"
    )


registry = Registry()
