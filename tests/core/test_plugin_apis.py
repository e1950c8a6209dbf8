"""Each first-party plugin's top-level API: light to import, and every advertised name resolves."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["deepapps_vision", "deepapps_nlp", "deepapps_games"]


@pytest.mark.parametrize("package", PACKAGES)
def test_import_is_light(package):
    code = f"import sys, {package}; print([m for m in ('torch','ultralytics','transformers','cv2','dlib') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_advertised_name_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
