"""Shared fixtures: one tiny chat model folder per test session (random Llama + trained BPE)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from deepapps_nlp.testing import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-chat"))


@pytest.fixture(scope="session")
def tiny_chat(tiny_model_dir):
    from deepapps_nlp import Chat

    return Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=12)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
