"""Timing helpers: a stopwatch that records named stages in milliseconds."""

from __future__ import annotations

import contextlib
import time


class Timer:
    """``with timer.stage("forward"): ...`` accumulates ms per stage in ``timer.ms``."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1e3

    @property
    def total(self) -> float:
        return sum(self.ms.values())
