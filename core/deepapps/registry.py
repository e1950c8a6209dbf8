"""The registry: what every loaded plugin registered, with duplicate names refused."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import DuplicateNameError, PluginError, UnknownNameError
from .specs import DatasetSpec, ModelSpec, TaskSpec, UIPageSpec


@dataclass
class _Tables:
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    task_aliases: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    model_aliases: dict[str, str] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    ui_pages: dict[str, UIPageSpec] = field(default_factory=dict)


class Registry:
    """Built on first use from the plugin hooks; rebuilt when plugins change."""

    def __init__(self) -> None:
        self._tables: _Tables | None = None
        self._lock = threading.RLock()

    def invalidate(self) -> None:
        with self._lock:
            self._tables = None

    @property
    def tables(self) -> _Tables:
        with self._lock:
            if self._tables is None:
                self._tables = self._build()
            return self._tables

    def _build(self) -> _Tables:
        from .plugins import load_plugins, mark_failed, pm

        load_plugins()
        t = _Tables()
        adders = {
            "register_tasks": self._add_task,
            "register_models": self._add_model,
            "register_datasets": self._add_dataset,
            "register_ui_pages": self._add_page,
        }
        # collect per plugin first, so a plugin whose hook raises contributes nothing
        collected: dict[str, list[tuple[str, Any]]] = {}
        for hook_name in adders:
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                bucket = collected.setdefault(impl.plugin_name, [])
                if bucket is None:
                    continue
                try:
                    impl.function(
                        *[
                            (lambda spec, _h=hook_name, _b=bucket: _b.append((_h, spec)))
                            for _ in impl.argnames
                        ]
                    )
                except Exception as exc:
                    mark_failed(impl.plugin_name, exc, during=hook_name)
                    collected[impl.plugin_name] = None  # type: ignore[assignment]
        for plugin_name in sorted(collected):
            for hook_name, spec in collected[plugin_name] or []:
                adders[hook_name](t, spec, plugin_name)
        return t

    @staticmethod
    def _claim(table: dict[str, Any], kind: str, name: str, spec: Any, plugin: str) -> None:
        if name in table:
            other = table[name].plugin
            raise DuplicateNameError(
                f"{kind} name {name!r} is registered by both plugin {other!r} and plugin {plugin!r}; "
                f"rename one of them or disable a plugin with DEEPAPPS_LOAD_PLUGINS"
            )
        spec.plugin = plugin
        table[name] = spec

    def _add_task(self, t: _Tables, spec: TaskSpec, plugin: str) -> None:
        if not isinstance(spec, TaskSpec):
            raise PluginError(
                f"plugin {plugin!r} passed {type(spec).__name__} to register_tasks; expected TaskSpec"
            )
        self._claim(t.tasks, "task", spec.name, spec, plugin)
        for alias in spec.aliases:
            if alias in t.task_aliases or alias in t.tasks:
                raise DuplicateNameError(f"task alias {alias!r} from plugin {plugin!r} is already taken")
            t.task_aliases[alias] = spec.name

    def _add_model(self, t: _Tables, spec: ModelSpec, plugin: str) -> None:
        if not isinstance(spec, ModelSpec):
            raise PluginError(
                f"plugin {plugin!r} passed {type(spec).__name__} to register_models; expected ModelSpec"
            )
        self._claim(t.models, "model", spec.name, spec, plugin)
        for alias in spec.aliases:
            if alias in t.model_aliases or alias in t.models:
                raise DuplicateNameError(f"model alias {alias!r} from plugin {plugin!r} is already taken")
            t.model_aliases[alias] = spec.name

    def _add_dataset(self, t: _Tables, spec: DatasetSpec, plugin: str) -> None:
        if not isinstance(spec, DatasetSpec):
            raise PluginError(
                f"plugin {plugin!r} passed {type(spec).__name__} to register_datasets; expected DatasetSpec"
            )
        self._claim(t.datasets, "dataset", spec.name, spec, plugin)

    def _add_page(self, t: _Tables, spec: UIPageSpec, plugin: str) -> None:
        if not isinstance(spec, UIPageSpec):
            raise PluginError(
                f"plugin {plugin!r} passed {type(spec).__name__} to register_ui_pages; expected UIPageSpec"
            )
        self._claim(t.ui_pages, "UI page for task", spec.task, spec, plugin)

    # lookups -----------------------------------------------------------------
    def tasks(self) -> list[TaskSpec]:
        return sorted(self.tables.tasks.values(), key=lambda s: s.name)

    def models(self, task: str | None = None) -> list[ModelSpec]:
        models = sorted(self.tables.models.values(), key=lambda s: s.name)
        if task is not None:
            task = self.task(task).name
            models = [m for m in models if m.task == task]
        return models

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


registry = Registry()
