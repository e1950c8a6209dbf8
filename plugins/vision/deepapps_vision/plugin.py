"""Hook implementations of the vision plugin.

Each sub-domain keeps its own ``specs`` module with ``tasks()``, ``models()``,
``datasets()``, ``ui_pages()`` and optionally ``commands(cli)``; this module only
gathers them, so sub-domains grow without touching each other.
"""

from __future__ import annotations

import importlib

from deepapps import hookimpl

SUBDOMAINS = ("deepapps_vision.detection.specs", "deepapps_vision.faces.specs", "deepapps_vision.segmentation.specs")


def _each(fn_name: str):
    for module_name in SUBDOMAINS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name or module_name.startswith(str(exc.name)):
                continue  # sub-domain not written yet
            raise
        fn = getattr(module, fn_name, None)
        if fn is not None:
            yield fn


@hookimpl
def register_tasks(register):
    for fn in _each("tasks"):
        for spec in fn():
            register(spec)


@hookimpl
def register_models(register):
    for fn in _each("models"):
        for spec in fn():
            register(spec)


@hookimpl
def register_datasets(register):
    for fn in _each("datasets"):
        for spec in fn():
            register(spec)


@hookimpl
def register_ui_pages(register):
    for fn in _each("ui_pages"):
        for spec in fn():
            register(spec)


@hookimpl
def register_commands(cli):
    for fn in _each("commands"):
        fn(cli)
