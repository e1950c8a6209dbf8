"""Lazy public APIs for plugin packages: names resolved on first use, so importing stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``names`` (public name -> ``"module"`` or ``"module:attr"``).

    In a package's ``__init__``: ``__getattr__ = lazy_exports(__name__, {"Chat": "pkg.chat"})``.
    """

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr or name)

    return __getattr__
