"""Runners: what ``deepapps.load`` returns. Call one with inputs to get Results.

The default flow is preprocess -> forward -> postprocess per input (the
transformers pipeline split), each stage timed into ``Result.timings``. A task may
override ``__call__`` (batched detection, streamed chat) and keep the same contract.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .results import Result


class Runner:
    """Base runner. Subclasses set ``task`` and implement the three stages."""

    task: str = ""

    def __init__(self, model_name: str = "", device: str = "cpu", **options: Any) -> None:
        self.model_name = model_name
        self.device = device
        self.options = options

    # stages ------------------------------------------------------------------
    def preprocess(self, item: Any, **kwargs: Any) -> Any:
        return item

    def forward(self, prepared: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def postprocess(self, raw: Any, item: Any, **kwargs: Any) -> Result:
        raise NotImplementedError

    # call --------------------------------------------------------------------
    def run_one(self, item: Any, **kwargs: Any) -> Result:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        prepared = self.preprocess(item, **kwargs)
        t1 = time.perf_counter()
        raw = self.forward(prepared, **kwargs)
        t2 = time.perf_counter()
        result = self.postprocess(raw, item, **kwargs)
        t3 = time.perf_counter()
        timings.update(preprocess=(t1 - t0) * 1e3, forward=(t2 - t1) * 1e3, postprocess=(t3 - t2) * 1e3)
        result.task = result.task or self.task
        result.model = result.model or self.model_name
        result.timings = {**timings, **result.timings}
        return result

    def __call__(self, inputs: Any, **kwargs: Any) -> Result | list[Result]:
        """One input gives one Result; a list or tuple gives a list of Results."""
        if isinstance(inputs, (list, tuple)):
            return [self.run_one(item, **kwargs) for item in inputs]
        return self.run_one(inputs, **kwargs)

    def stream(self, inputs: Iterable[Any], **kwargs: Any):
        """Yield Results one by one (video frames, long folders)."""
        for item in inputs:
            yield self.run_one(item, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={self.model_name!r}, device={self.device!r})"
