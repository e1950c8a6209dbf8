"""Errors a user can act on: each says what was wrong and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DeepAppsError(Exception):
    """Base class for every error deepapps raises on purpose."""


class PluginError(DeepAppsError):
    """A plugin failed to load or registered something invalid."""


class DuplicateNameError(PluginError):
    """Two plugins registered the same task, model or dataset name."""


class UnknownNameError(DeepAppsError, KeyError):
    """A task, model or dataset name that no plugin registered (or that belongs elsewhere)."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], note: str = "", also: Iterable[str] = ()):
        """``also``: other spellings (aliases) that may be suggested but are not listed."""
        self.kind, self.name = kind, name
        self.valid = ordered_suggestions(name, valid)
        close = difflib.get_close_matches(name, self.valid + sorted(set(also)), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close and close[0] != name else ""
        listing = ", ".join(sorted(self.valid)) if self.valid else "(none registered)"
        extra = f" ({note})" if note else ""
        msg = f"unknown {kind} {name!r}{extra}{hint}. Valid {kind.split()[0]}s: {listing}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class DeviceError(DeepAppsError, ValueError):
    """A device string that is malformed or not available on this machine."""


class CheckpointError(DeepAppsError):
    """A checkpoint that is missing, truncated, corrupt or of the wrong kind."""


class InputError(DeepAppsError, ValueError):
    """An input (image, video, text, move...) the task cannot use, and why."""


class ModelNotAvailableError(DeepAppsError):
    """A model whose weights are not on this machine; the message says how to pull them."""


def ordered_suggestions(name: str, valid: Iterable[str]) -> list[str]:
    """All valid names, the closest matches to ``name`` first."""
    valid = sorted(set(valid))
    close = difflib.get_close_matches(name, valid, n=len(valid), cutoff=0.0)
    # get_close_matches with cutoff 0 ranks everything by similarity
    return close or valid
