"""Runners: what ``deepapps.load`` returns. Call one with inputs to get Results.

The default flow is preprocess -> forward -> postprocess per input (the transformers
pipeline split). A task may override ``__call__`` (batched detection, streamed chat) and
keep the same contract:

- call-time options are checked against the task's declaration before the runner sees them,
  with defaults filled in (the check wraps every subclass's ``__call__`` automatically), so a
  runner method names its options explicitly and needs no ``**kwargs`` catch-all;
- every Result names its input (``source``) and carries one timing layout, in milliseconds:
  ``load`` (the runner's model load, shared by its results), the stages, and ``total`` (this
  input, load excluded).
"""

from __future__ import annotations

import copy
import functools
import os
import time
from collections.abc import Iterable
from typing import Any

from .options import CALL, Option, check_options
from .results import Result


def describe_input(item: Any) -> str:
    """A short name for an input: its path, or its kind and size."""
    if isinstance(item, (str, os.PathLike)):
        text = os.fspath(item)
        return text if len(text) <= 80 else "..." + text[-77:]  # keep the file name
    size = getattr(item, "size", None)
    if type(item).__module__.startswith("PIL") and isinstance(size, tuple):
        return f"<image {size[0]}x{size[1]}>"
    shape = getattr(item, "shape", None)
    if shape is not None:
        return f"<array {'x'.join(str(s) for s in shape)}>"
    if isinstance(item, (bytes, bytearray)):
        return f"<{len(item)} bytes>"
    return f"<{type(item).__name__}>"


def _checked(call):
    @functools.wraps(call)
    def checked_call(self, inputs: Any, **kwargs: Any):
        return call(self, inputs, **self.check_call_options(kwargs))

    checked_call._checks_options = True  # type: ignore[attr-defined]
    return checked_call


class Runner:
    """Base runner. Subclasses set ``task`` and implement the three stages (or ``__call__``)."""

    task: str = ""

    def __init__(self, model_name: str = "", device: str = "cpu", precision: str = "fp32") -> None:
        self.model_name = model_name
        self.device = device
        self.precision = precision
        self.load_ms = 0.0
        self._call_options: tuple[Option, ...] | None = None
        self._bound: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is not None and not getattr(call, "_checks_options", False):
            cls.__call__ = _checked(call)

    # options -----------------------------------------------------------------
    @property
    def call_options(self) -> tuple[Option, ...]:
        """The task's declared call-time options (from the registry when built directly)."""
        if self._call_options is None:
            declared: tuple[Option, ...] = ()
            if self.task:
                from .registry import registry

                try:
                    declared = tuple(o for o in registry.task(self.task).options if o.when == CALL)
                except KeyError:
                    declared = ()
            self._call_options = declared
        return self._call_options

    def check_call_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """Checked call options: the declared defaults, then bound defaults, then ``given``."""
        options = self.call_options
        if not options:
            if given:
                from .options import unknown_option_error

                raise unknown_option_error(next(iter(given)), (), f"task {self.task!r}")
            return {}
        merged = {**self._bound, **given}
        return check_options(options, merged, f"task {self.task!r}")

    def with_defaults(self, **call_options: Any) -> Runner:
        """A view of this runner (same model) whose calls default to ``call_options``."""
        view = copy.copy(self)
        view._bound = {**self._bound, **check_options(self.call_options, call_options,
                                                       f"task {self.task!r}", fill_defaults=False)}
        return view

    # stages ------------------------------------------------------------------
    def preprocess(self, item: Any, **kwargs: Any) -> Any:
        return item

    def forward(self, prepared: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def postprocess(self, raw: Any, item: Any, **kwargs: Any) -> Result:
        raise NotImplementedError

    # call --------------------------------------------------------------------
    def run_one(self, item: Any, **kwargs: Any) -> Result:
        t0 = time.perf_counter()
        prepared = self.preprocess(item, **kwargs)
        t1 = time.perf_counter()
        raw = self.forward(prepared, **kwargs)
        t2 = time.perf_counter()
        result = self.postprocess(raw, item, **kwargs)
        t3 = time.perf_counter()
        stages = {"preprocess": (t1 - t0) * 1e3, "forward": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}
        return self.finish(result, item, stages, started=t0)

    def finish(self, result: Result, item: Any, stages: dict[str, float], started: float) -> Result:
        """Fill in task, model, source and the timing layout of a result made by this runner."""
        result.task = result.task or self.task
        result.model = result.model or self.model_name
        result.source = result.source or describe_input(item)
        own = {k: v for k, v in result.timings.items() if k not in ("load", "total")}
        result.timings = {"load": self.load_ms, **stages, **own,
                          "total": (time.perf_counter() - started) * 1e3}
        return result

    def __call__(self, inputs: Any, **kwargs: Any) -> Result | list[Result]:
        """One input gives one Result; a list or tuple gives a list of Results."""
        if isinstance(inputs, (list, tuple)):
            return [self.run_one(item, **kwargs) for item in inputs]
        return self.run_one(inputs, **kwargs)

    def stream(self, inputs: Iterable[Any], **kwargs: Any):
        """Yield Results one by one (video frames, long folders)."""
        checked = self.check_call_options(kwargs)
        for item in inputs:
            yield self.run_one(item, **checked)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={self.model_name!r}, device={self.device!r})"


Runner.__call__ = _checked(Runner.__call__)  # type: ignore[method-assign]
