"""Result objects: one per input, in the spirit of ultralytics' ``Results``.

Subclass :class:`Result` as a dataclass, add your fields, and override :meth:`plot`
where a picture makes sense. ``to_dict`` turns numpy arrays, tensors and nested
dataclasses into plain JSON-ready values.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Convert arrays, tensors, paths and dataclasses into JSON-ready Python values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return value.to_dict()
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    module = type(value).__module__
    if module.startswith("numpy"):
        return to_jsonable(value.tolist())
    if module.startswith("torch"):
        return to_jsonable(value.detach().cpu().tolist())
    if module.startswith("PIL"):
        return f"<image {value.size[0]}x{value.size[1]} {value.mode}>"
    if hasattr(value, "__fspath__"):
        return str(value)
    return repr(value)


def private(default: Any = None, **kwargs: Any) -> Any:
    """A dataclass field left out of ``to_dict`` and repr (source images, big arrays)."""
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return field(repr=False, compare=False, metadata={"json": False}, **kwargs)


@dataclass(kw_only=True)
class Result:
    """The outcome of one input. ``source`` names the input; ``timings`` holds milliseconds:
    ``load`` (the runner's model load), one key per stage, and ``total`` (this input).

    Subclass as a dataclass; mark bulky fields with :func:`private` to keep them out of JSON.
    """

    task: str = ""
    model: str = ""
    source: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            if f.name.startswith("_") or f.metadata.get("json") is False:
                continue
            out[f.name] = to_jsonable(getattr(self, f.name))
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def plot(self):
        """A PIL image of this result; tasks without a picture raise NotImplementedError."""
        raise NotImplementedError(f"task {self.task!r} has no picture for its results; use to_dict()")

    def summary(self) -> str:
        """One line for terminals."""
        return self.to_json()


@dataclass
class EvalReport:
    """What ``deepapps eval --json`` prints: metrics computed on held-out data."""

    task: str
    model: str
    dataset: str
    split: str
    n: int
    metrics: dict[str, Any]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "task": self.task,
            "model": self.model,
            "dataset": self.dataset,
            "split": self.split,
            "n": self.n,
            "metrics": to_jsonable(self.metrics),
            "seconds": round(self.seconds, 3),
        }
        if self.extra:
            out["extra"] = to_jsonable(self.extra)
        return out


@dataclass
class BenchReport:
    """What ``deepapps bench --json`` prints: each figure with its unit and what it measured."""

    task: str
    model: str
    figures: dict[str, dict[str, Any]]  # name -> {"value": float, "unit": str, ...}
    seconds: float
    setup: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str, **notes: Any) -> None:
        self.figures[name] = {"value": value, "unit": unit, **notes}

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "figures": to_jsonable(self.figures),
            "setup": to_jsonable(self.setup),
            "seconds": round(self.seconds, 3),
        }
