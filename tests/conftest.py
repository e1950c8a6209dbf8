"""Test-wide settings: an isolated deepapps home, no progress bars, offline hubs."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config):
    # before anything imports deepapps.runtime.home
    if "DEEPAPPS_TEST_KEEP_HOME" not in os.environ:
        os.environ["DEEPAPPS_HOME"] = tempfile.mkdtemp(prefix="deepapps-test-home-")
    os.environ.setdefault("DEEPAPPS_NO_PROGRESS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
