"""The Chat page runs headless with a tiny model: a streamed reply appears and is stored."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from deepapps_nlp.testing import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-chat-ui"))


def _page():
    from deepapps_nlp.ui_page import render

    render()


def test_chat_page_streams_a_reply_and_lists_the_conversation(tiny_dir, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from deepapps.runtime.device import select_device
    from deepapps_nlp.store import ConversationStore
    from deepapps_ui import widgets

    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEEPAPPS_CHAT_MODEL", str(tiny_dir))
    at = AppTest.from_function(_page, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "💬 Chat"
    picker = at.selectbox(key="chat-model")
    assert picker.value == widgets.OTHER_MODEL and at.text_input(key="chat-model-other").value == str(
        tiny_dir
    )
    assert "smollm2-135m-instruct" in picker.options[0]  # the shared picker lists the registered models
    assert at.selectbox(key="chat-preset").options[:2] == ["assistant", "programming"]
    temperature = at.slider(key="chat-temperature")
    assert (temperature.min, temperature.max, temperature.value) == (0.0, 2.0, 0.7)  # the declared range
    device = select_device("auto")  # the sidebar's device (its default)
    assert any(c.value.startswith(tiny_dir.name) and c.value.endswith(device) for c in at.caption)
    at.selectbox(key="chat-preset").set_value("tutoring")
    temperature.set_value(0.0)  # greedy
    at.number_input(key="chat-max-tokens").set_value(6)
    at.chat_input[0].set_value("What is a fraction?").run()
    assert not at.exception, at.exception
    roles = [m.name for m in at.chat_message]
    assert roles == ["user", "assistant"]
    assert at.chat_message[0].markdown[0].value == "What is a fraction?"
    assert any("completion tokens" in c.value for c in at.caption)
    convs = ConversationStore().list()
    assert len(convs) == 1 and convs[0].n_messages == 2 and convs[0].preset == "tutoring"
    stored = ConversationStore().get(convs[0].id).messages
    assert stored[1]["role"] == "assistant" and stored[1]["content"]
    assert at.chat_message[1].markdown[0].value.strip() == stored[1]["content"].strip()
    assert at.json, "result_view shows the result's JSON"
    # the conversation shows in the sidebar list, and a rerun shows the stored history
    at.run()
    assert any(b.label.startswith("▶ What is a fraction?") for b in at.sidebar.button)
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
