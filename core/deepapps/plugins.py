"""Plugin manager: loads plugins once, lazily, each in isolation, and collects their specs.

Every plugin, first-party or not, arrives through the ``deepapps`` entry-point group.
A plugin is untrusted code as far as the host's health goes: anything it raises while
importing or running a hook (``SystemExit`` included; only ``KeyboardInterrupt`` passes
through) marks *that* plugin failed, with the reason, and it then contributes nothing —
no task, model, dataset, page or command. ``DEEPAPPS_STRICT_PLUGINS=1`` makes any such
failure fatal instead. ``DEEPAPPS_LOAD_PLUGINS=a,b`` loads only those entry points (an
empty value loads none).

First-party plugins are the ``deepapps`` distribution's own entry points (modules named
``deepapps_*``). When two plugins claim one name (task, model, dataset, page, command or
entry-point name), the first-party one keeps it; between others, the one loaded first
(entry points by name, then in-process plugins in registration order) keeps it, and the
other is marked failed naming both.
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
from .errors import DuplicateNameError, PluginError

ENTRY_POINT_GROUP = "deepapps"
FIRST_PARTY_DISTRIBUTION = "deepapps"

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
    first_party: bool = False
    order: int = 0  # who keeps a clashing name: first-party first, then lowest order
    failed_during: str | None = None  # "import", a hook name, or "claiming names"
    traceback: str | None = field(default=None, repr=False)
    exception: BaseException | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "module": self.module,
            "status": self.status,
            "error": self.error,
            "hooks": self.hooks,
        }

    @property
    def priority(self) -> tuple[int, int]:
        return (0 if self.first_party else 1, self.order)


# one lock for plugins and registry: the registry build runs hooks and may mark plugins failed
LOCK = threading.RLock()
_loaded = False
_infos: dict[str, PluginInfo] = {}
_order = 0


def _strict() -> bool:
    return os.environ.get("DEEPAPPS_STRICT_PLUGINS", "").lower() in {"1", "true", "yes"}


def _selected() -> set[str] | None:
    value = os.environ.get("DEEPAPPS_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def is_first_party(dist_name: str | None, module: str) -> bool:
    """The deepapps distribution's own plugins: they keep a name another plugin also claims."""
    normalized = (dist_name or "").replace("_", "-").lower()
    return normalized == FIRST_PARTY_DISTRIBUTION and module.startswith("deepapps_")


@dataclass
class _Candidate:
    ep: importlib.metadata.EntryPoint
    version: str | None
    dist_name: str

    @property
    def first_party(self) -> bool:
        return is_first_party(self.dist_name, self.ep.value)


def _entry_points() -> tuple[list[_Candidate], list[tuple[_Candidate, _Candidate]]]:
    """Entry points by name (first-party wins a name), and the (kept, refused) name clashes."""
    chosen: dict[str, _Candidate] = {}
    clashes: list[tuple[_Candidate, _Candidate]] = []
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"] or ""
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            cand = _Candidate(ep, dist.version, dist_name)
            kept = chosen.get(ep.name)
            if kept is None:
                chosen[ep.name] = cand
            elif kept.ep.value == ep.value and kept.dist_name == dist_name:
                continue  # the same distribution seen twice on sys.path (e.g. editable + egg-info)
            elif cand.first_party and not kept.first_party:
                chosen[ep.name] = cand
                clashes.append((cand, kept))
            else:
                clashes.append((kept, cand))
    return sorted(chosen.values(), key=lambda c: c.ep.name), clashes


def load_plugins() -> None:
    """Load every selected entry point once. Safe to call many times and from threads."""
    global _loaded
    with LOCK:
        if _loaded:
            return
        _loaded = True
        selected = _selected()
        candidates, clashes = _entry_points()
        for cand in candidates:
            if selected is not None and cand.ep.name not in selected:
                continue
            _load_one(cand.ep.name, cand.ep.value, cand.version, cand.ep.load, cand.first_party)
        for kept, refused in clashes:
            if selected is None or refused.ep.name in selected:
                _record_entry_point_clash(kept, refused)
        from .registry import registry

        registry.invalidate()


def _record_entry_point_clash(kept: _Candidate, refused: _Candidate) -> None:
    label = f"{refused.ep.name} ({refused.dist_name})"
    info = _new_info(label, refused.version, refused.ep.value, first_party=False)
    exc = DuplicateNameError(
        f"entry point name {refused.ep.name!r} is already used by {kept.ep.value} "
        f"(distribution {kept.dist_name!r}); this one was not loaded. Rename the entry point"
    )
    _fail(info, exc, "loading")


def _new_info(name: str, version: str | None, module: str, first_party: bool) -> PluginInfo:
    global _order
    _order += 1
    info = PluginInfo(name=name, version=version, module=module, first_party=first_party, order=_order)
    _infos[name] = info
    return info


def _load_one(name: str, module: str, version: str | None, loader, first_party: bool = False) -> None:
    info = _new_info(name, version, module, first_party)
    try:
        plugin = loader()
        pm.register(plugin, name=name)
        pm.check_pending()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a plugin must never end the host
        _fail(info, exc, "import")
        return
    info.hooks = sorted(
        caller.name for caller in (pm.get_hookcallers(plugin) or []) if not caller.name.startswith("_")
    )


def _fail(info: PluginInfo, exc: BaseException, during: str) -> None:
    """Mark ``info`` failed and take its plugin out of the hook manager; raise when strict."""
    if pm.has_plugin(info.name):
        pm.unregister(name=info.name)
    info.status = "failed"
    info.failed_during = during
    where = "" if during == "import" else f" in {during}"
    info.error = f"{type(exc).__name__}{where}: {_one_line(exc)}"
    info.exception = exc
    info.traceback = "".join(traceback.format_exception(exc))
    if _strict():
        raise PluginError(
            f"plugin {info.name!r} ({info.module}) failed in {during}: {_one_line(exc)}"
        ) from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else repr(exc))[:500]


def info(name: str) -> PluginInfo | None:
    """The record of plugin ``name`` (``None`` if it was never tried)."""
    return _infos.get(name)


def fail_plugin(name: str, exc: BaseException, during: str) -> None:
    """Mark plugin ``name`` failed without touching the registry (which calls this while it builds)."""
    with LOCK:
        record = _infos.get(name) or _new_info(name, None, name, first_party=False)
        _fail(record, exc, during)


def mark_failed(name: str, exc: BaseException, during: str) -> None:
    """Record that plugin ``name`` raised in hook ``during``: it then contributes nothing. Fatal when strict."""
    with LOCK:
        from .registry import registry

        registry.invalidate()
        fail_plugin(name, exc, during)


def guarded_call(plugin_name: str, during: str, fn, *args: Any) -> bool:
    """Run one hook implementation; on any failure but Ctrl-C mark its plugin failed. True if it ran."""
    try:
        fn(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        mark_failed(plugin_name, exc, during)
        return False
    return True


def add_commands(cli: Any) -> None:
    """Call every ``register_commands`` hook on the click group ``cli``, each plugin in isolation.

    A plugin that raises, or that replaces a command already there (a core verb or another
    plugin's), is marked failed and every command it added is removed again.
    """
    load_plugins()
    with LOCK:
        impls = sorted(pm.hook.register_commands.get_hookimpls(), key=lambda i: _priority(i.plugin_name))
        for impl in impls:
            before = dict(cli.commands)
            ok = guarded_call(impl.plugin_name, "register_commands", impl.function, cli)
            replaced = [n for n, cmd in before.items() if cli.commands.get(n) is not cmd]
            if ok and replaced:
                mark_failed(
                    impl.plugin_name,
                    DuplicateNameError(
                        f"command {replaced[0]!r} already exists; rename the plugin's command"
                    ),
                    "register_commands",
                )
                ok = False
            if not ok:
                cli.commands.clear()
                cli.commands.update(before)


def _priority(name: str) -> tuple[int, int]:
    record = _infos.get(name)
    return record.priority if record else (1, 1 << 30)


def register_plugin(plugin: Any, name: str, version: str | None = None) -> None:
    """Register an in-process plugin (tests, notebooks) exactly as an entry point would be.

    Raises :class:`PluginError` when it cannot be used: it fails to register, passes the wrong
    type to a hook, or claims a name another plugin already holds (:class:`DuplicateNameError`).
    A plugin whose hook raises is only recorded as failed, like an entry point.
    """
    load_plugins()
    from .registry import registry

    with LOCK:
        existing = _infos.get(name)
        if pm.has_plugin(name) or (existing is not None and existing.status == "ok"):
            raise PluginError(f"a plugin named {name!r} is already registered; unregister it first")
        _load_one(name, getattr(plugin, "__name__", type(plugin).__name__), version, lambda: plugin)
        registry.invalidate()
        record = _infos[name]
        if record.status == "ok":
            registry.tables  # noqa: B018 - build now, so a clash is reported to this caller
        refused = record.failed_during == "import" or isinstance(record.exception, PluginError)
        if record.status == "failed" and refused:
            if isinstance(record.exception, DuplicateNameError):
                raise DuplicateNameError(f"plugin {name!r}: {_one_line(record.exception)}")
            raise PluginError(f"plugin {name!r} failed to register: {record.error}")


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`."""
    with LOCK:
        if pm.has_plugin(name):
            pm.unregister(name=name)
        _infos.pop(name, None)
        from .registry import registry

        registry.invalidate()


def get_plugins() -> list[PluginInfo]:
    """Every plugin that was tried, loaded or failed, sorted by name.

    Builds the registry first, so a plugin that failed while registering shows as failed.
    """
    load_plugins()
    from .registry import registry

    with LOCK:
        registry.tables  # noqa: B018 - runs the registration hooks
        return [_infos[name] for name in sorted(_infos)]


def ordered_plugin_names(names: list[str] | set[str]) -> list[str]:
    """``names`` in claim order: first-party plugins first, then by load order."""
    return sorted(names, key=lambda n: (_priority(n), n))


def reset() -> None:
    """Forget every plugin (for tests that change DEEPAPPS_LOAD_PLUGINS)."""
    global _loaded
    with LOCK:
        for name in list(_infos):
            if pm.has_plugin(name):
                pm.unregister(name=name)
        _infos.clear()
        _loaded = False
        from .registry import registry

        registry.invalidate()
