"""Plugin manager: loads plugins once, lazily, each in isolation, and collects their specs.

Every plugin, first-party or not, arrives through the ``deepapps`` entry-point group.
A plugin that raises on import is recorded with its error and skipped, unless
``DEEPAPPS_STRICT_PLUGINS=1``. ``DEEPAPPS_LOAD_PLUGINS=a,b`` loads only those entry
points (an empty value loads none).
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

ENTRY_POINT_GROUP = "deepapps"

pm = pluggy.PluginManager("deepapps")
pm.add_hookspecs(hookspecs)


@dataclass
class PluginInfo:
    """One plugin as ``deepapps plugins`` shows it."""

    name: str
    version: str | None
    module: str
    status: str = "ok"  # "ok" or "failed"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "module": self.module,
            "status": self.status,
            "error": self.error,
            "hooks": self.hooks,
        }


_lock = threading.RLock()
_loaded = False
_infos: dict[str, PluginInfo] = {}


def _strict() -> bool:
    return os.environ.get("DEEPAPPS_STRICT_PLUGINS", "").lower() in {"1", "true", "yes"}


def _selected() -> set[str] | None:
    value = os.environ.get("DEEPAPPS_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _entry_points() -> list[tuple[importlib.metadata.EntryPoint, str | None]]:
    found = []
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP and ep.name not in seen:
                seen.add(ep.name)
                found.append((ep, dist.version))
    return sorted(found, key=lambda pair: pair[0].name)


def load_plugins() -> None:
    """Load every selected entry point once. Safe to call many times and from threads."""
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        selected = _selected()
        for ep, version in _entry_points():
            if selected is not None and ep.name not in selected:
                continue
            _load_one(ep.name, ep.value, version, ep.load)
        from .registry import registry

        registry.invalidate()


def _load_one(name: str, module: str, version: str | None, loader) -> None:
    info = PluginInfo(name=name, version=version, module=module)
    _infos[name] = info
    try:
        plugin = loader()
        pm.register(plugin, name=name)
        pm.check_pending()
    except Exception as exc:  # isolate the host from a broken plugin
        if pm.has_plugin(name):
            pm.unregister(name=name)
        info.status = "failed"
        info.error = f"{type(exc).__name__}: {exc}"
        if _strict():
            raise PluginError(f"plugin {name!r} ({module}) failed to load: {info.error}") from exc
        info.traceback = traceback.format_exc()  # type: ignore[attr-defined]
        return
    info.hooks = sorted(
        caller.name for caller in (pm.get_hookcallers(plugin) or []) if not caller.name.startswith("_")
    )


def mark_failed(name: str, exc: BaseException, during: str) -> None:
    """Record that plugin ``name`` raised in hook ``during``; fatal when strict."""
    info = _infos.get(name) or PluginInfo(name=name, version=None, module=name)
    _infos[name] = info
    info.status = "failed"
    info.error = f"{type(exc).__name__} in {during}: {exc}"
    if _strict():
        raise PluginError(f"plugin {name!r} failed in {during}: {exc}") from exc


def register_plugin(plugin: Any, name: str, version: str | None = None) -> None:
    """Register an in-process plugin (tests, notebooks) exactly as an entry point would be."""
    load_plugins()
    with _lock:
        _load_one(name, getattr(plugin, "__name__", type(plugin).__name__), version, lambda: plugin)
        from .registry import registry

        registry.invalidate()
        if _infos[name].status == "failed":
            raise PluginError(f"plugin {name!r} failed to register: {_infos[name].error}")


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`."""
    with _lock:
        if pm.has_plugin(name):
            pm.unregister(name=name)
        _infos.pop(name, None)
        from .registry import registry

        registry.invalidate()


def get_plugins() -> list[PluginInfo]:
    """Every plugin that was tried, loaded or failed, sorted by name."""
    load_plugins()
    return [_infos[name] for name in sorted(_infos)]


def reset() -> None:
    """Forget every plugin (for tests that change DEEPAPPS_LOAD_PLUGINS)."""
    global _loaded
    with _lock:
        for name in list(_infos):
            if pm.has_plugin(name):
                pm.unregister(name=name)
        _infos.clear()
        _loaded = False
        from .registry import registry

        registry.invalidate()
