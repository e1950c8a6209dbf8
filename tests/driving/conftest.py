"""Driving test settings: one torch thread (small networks; the shared CI CPU is oversubscribed)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    from deepapps.runtime.threads import set_threads

    set_threads(1)
