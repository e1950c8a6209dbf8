"""The OpenAI-compatible server, driven by the official `openai` client against a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

API_KEY = "sk-test-local"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    import uvicorn

    from deepapps_nlp import Chat
    from deepapps_nlp.server import create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=12)
    app = create_app({"tiny": chat}, api_key=API_KEY, max_queue=40)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}/v1", "app": app, "chat": chat}
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def client(server):
    import openai

    return openai.OpenAI(base_url=server["url"], api_key=API_KEY, max_retries=0, timeout=60)


def test_models_list(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"


def test_non_streaming_matches_chat_api(client, server):
    msgs = [{"role": "user", "content": "What time do you open?"}]
    resp = client.chat.completions.create(model="tiny", messages=msgs, temperature=0, max_tokens=10)
    expected = server["chat"](msgs, temperature=0, max_tokens=10)
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == expected.text
    assert resp.choices[0].finish_reason == expected.finish_reason
    assert resp.usage.prompt_tokens == expected.prompt_tokens
    assert resp.usage.completion_tokens == expected.completion_tokens
    assert resp.usage.total_tokens == expected.total_tokens


def test_streaming_with_usage(client, server):
    msgs = [{"role": "user", "content": "Tell me about refunds"}]
    stream = client.chat.completions.create(
        model="tiny",
        messages=msgs,
        temperature=0,
        max_tokens=10,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    expected = server["chat"](msgs, temperature=0, max_tokens=10)
    assert "".join(pieces) == expected.text
    assert finish == expected.finish_reason
    assert usage.completion_tokens == expected.completion_tokens


def test_raw_sse_ends_with_done(server):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 4}
    with httpx.stream(
        "POST",
        server["url"] + "/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=60,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    first = json.loads(lines[0][len("data: ") :])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"


def _post(server, body, key=API_KEY, raw=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if raw is not None:
        headers["Content-Type"] = "application/json"
        return httpx.post(server["url"] + "/chat/completions", content=raw, headers=headers, timeout=60)
    return httpx.post(server["url"] + "/chat/completions", json=body, headers=headers, timeout=60)


@pytest.mark.parametrize(
    "body, status, param, fragment",
    [
        (None, 400, None, "parse the JSON"),
        ({"model": "tiny"}, 400, "messages", "messages"),
        ({"model": "tiny", "messages": [{"role": "robot", "content": "x"}]}, 400, "messages", "role"),
        ({"model": "tiny", "messages": "hello"}, 400, "messages", None),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "word " * 3000}]},
            400,
            "messages",
            "context window",
        ),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            400,
            "max_tokens",
            "at least 1",
        ),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**9},
            400,
            "max_tokens",
            "context window",
        ),
        ({"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]}, 404, "model", "does not exist"),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "temperature": 9},
            400,
            "temperature",
            "temperature",
        ),
    ],
)
def test_bad_requests_get_openai_error_bodies(server, body, status, param, fragment):
    r = _post(server, body, raw=b"{not json" if body is None else None)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param
    if fragment:
        assert fragment in err["message"]
    # and the server keeps serving
    ok = _post(
        server, {"model": "tiny", "messages": [{"role": "user", "content": "still there?"}], "max_tokens": 2}
    )
    assert ok.status_code == 200


def test_openai_client_raises_typed_errors(client):
    import openai

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "x"}], max_tokens=-5
        )
    assert info.value.param == "max_tokens"


def test_api_key_is_required(server):
    import openai

    bad = openai.OpenAI(base_url=server["url"], api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    r = _post(server, {"model": "tiny", "messages": [{"role": "user", "content": "x"}]}, key=None)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_32_concurrent_streams_each_get_their_own_answer(server):
    import openai

    prompts = [f"Question {i}: what about item {i * 7}?" for i in range(32)]
    expected = {p: server["chat"](p, temperature=0, max_tokens=8).text for p in prompts}
    assert len(set(expected.values())) >= 16  # the tiny model answers differently per prompt

    async def one(aclient, prompt):
        stream = await aclient.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
            max_tokens=8,
            stream=True,
        )
        parts = []
        async for chunk in stream:
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
        return prompt, "".join(parts)

    async def main():
        aclient = openai.AsyncOpenAI(base_url=server["url"], api_key=API_KEY, max_retries=0, timeout=120)
        return await asyncio.gather(*(one(aclient, p) for p in prompts))

    t0 = time.perf_counter()
    results = asyncio.run(main())
    assert time.perf_counter() - t0 < 120
    assert len(results) == 32
    for prompt, text in results:
        assert text == expected[prompt], prompt


def test_queue_bound_gives_429(tiny_model_dir):
    from fastapi.testclient import TestClient

    from deepapps_nlp import Chat
    from deepapps_nlp.server import create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=2)
    app = create_app({"tiny": chat}, max_queue=0)
    with TestClient(app) as tc:
        app.state.served["tiny"].waiting = 0
        r = tc.post(
            "/v1/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": "x"}]}
        )
        assert r.status_code == 429
        assert r.json()["error"]["type"] == "rate_limit_error"


def test_client_disconnect_stops_generation(server):
    app = server["app"]
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "a long story"}],
        "stream": True,
        "max_tokens": 200,
        "min_tokens": 200,
    }
    with httpx.stream(
        "POST",
        server["url"] + "/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=60,
    ) as r:
        n = 0
        for line in r.iter_lines():
            if line.startswith("data: {"):
                n += 1
            if n >= 3:
                break  # leave mid-stream: closing the response drops the connection
    deadline = time.time() + 30
    while time.time() < deadline:
        cancelled = [f for f in app.state.finished if f[1] == "cancelled"]
        if cancelled and app.state.active == 0:
            break
        time.sleep(0.1)
    assert cancelled, list(app.state.finished)
    assert cancelled[-1][2] < 200
    assert not server["chat"].loaded.lock.locked()


def test_main_thread_executor_runs_jobs_on_the_calling_thread():
    from deepapps_nlp.server import MainThreadExecutor

    ex = MainThreadExecutor()
    seen: list[str] = []
    futures = []

    def submit_from_elsewhere():
        futures.append(ex.submit(lambda: seen.append(threading.current_thread().name) or 42))
        futures.append(ex.submit(lambda: 1 / 0))

    t = threading.Thread(target=submit_from_elsewhere)
    t.start()
    t.join()
    ex.run(keep_going=lambda: not all(f.done() for f in futures))
    assert seen == [threading.current_thread().name]
    assert futures[0].result() == 42
    with pytest.raises(ZeroDivisionError):
        futures[1].result()
    pending = ex.submit(lambda: None)
    ex.shutdown()
    assert pending.cancelled()
    with pytest.raises(RuntimeError, match="shutting down"):
        ex.submit(lambda: None)


def test_serve_decodes_on_the_main_thread_and_reports_a_busy_port(tiny_model_dir):
    from deepapps import DeepAppsError
    from deepapps_nlp import Chat
    from deepapps_nlp.server import serve

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=4)
    port = _free_port()
    threads: list[str] = []
    original = chat.decode

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        yield from original(*args, **kwargs)

    chat.decode = spy

    def client():
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": chat.model_name, "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(100):
            try:
                r = httpx.post(url, json=body, timeout=30)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == chat("hi").text
        import _thread

        _thread.interrupt_main()  # Ctrl-C

    t = threading.Thread(target=client, daemon=True)
    t.start()
    serve(chat, port=port, log_level="warning")
    t.join(timeout=5)
    assert threads and threads[0] == threading.main_thread().name

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(DeepAppsError, match="could not start"):
            serve(chat, port=busy.getsockname()[1], log_level="critical")
