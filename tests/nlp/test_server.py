"""The OpenAI-compatible server, driven by the official `openai` client against a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

API_KEY = "sk-test-local"


def _solo(chat, messages, **options):
    """What a lone request gets: the Chat API's result for the same messages and options."""
    stream = chat.stream_reply(messages, **options)
    stream.text()
    return stream.result


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    from deepapps_nlp import Chat
    from deepapps_nlp.loadtest import serve_in_thread
    from deepapps_nlp.server import ServerLimits, create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=12)
    app = create_app({"tiny": chat}, api_key=API_KEY, limits=ServerLimits(max_queue=40))
    with serve_in_thread(app) as url:
        yield {"url": url + "/v1", "app": app, "chat": chat, "service": app.state.service}


@pytest.fixture()
def client(server):
    import openai

    return openai.OpenAI(base_url=server["url"], api_key=API_KEY, max_retries=0, timeout=60)


def _wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_models_list(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"


def test_non_streaming_matches_chat_api(client, server):
    msgs = [{"role": "user", "content": "What time do you open?"}]
    resp = client.chat.completions.create(model="tiny", messages=msgs, temperature=0, max_tokens=10)
    expected = _solo(server["chat"], msgs, temperature=0, max_tokens=10)
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
    expected = _solo(server["chat"], msgs, temperature=0, max_tokens=10)
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
        ({"model": "tiny", "messages": [{"role": "user", "content": "x"}], "stop": 5}, 400, "stop", "stop"),
        ({"model": "tiny", "messages": [{"role": "user", "content": "x"}], "seed": 2**70}, 400, "seed", "64"),
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
    expected = {p: _solo(server["chat"], p, temperature=0, max_tokens=8).text for p in prompts}
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

    results = asyncio.run(asyncio.wait_for(main(), 120))
    assert len(results) == 32
    for prompt, text in results:
        assert text == expected[prompt], prompt


def test_a_burst_is_admitted_up_to_the_queue_bound_at_request_start(tiny_model_dir):
    """8 streaming requests at once against max_queue=2 while the worker is busy: 1 served + 2
    waiting are admitted, 5 get 429 at once (streams used to be counted only once they began)."""
    from deepapps_nlp import Chat
    from deepapps_nlp.loadtest import serve_in_thread
    from deepapps_nlp.server import ServerLimits, create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=3)
    worker = ThreadPoolExecutor(max_workers=1)
    busy = threading.Event()
    worker.submit(busy.wait, 60)  # every job queues behind this one until the test releases it
    app = create_app({"tiny": chat}, limits=ServerLimits(max_queue=2), worker=worker)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "stream": True}

    async def one(client):
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            text = "".join([line async for line in r.aiter_lines()])
            return r.status_code, text

    async def main(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            tasks = [asyncio.create_task(one(client)) for _ in range(8)]
            while sum(t.done() for t in tasks) < 5:  # the 429s come back while the worker is busy
                await asyncio.sleep(0.02)
            health = (await client.get("/health")).json()
            busy.set()
            return health, await asyncio.gather(*tasks)

    try:
        with serve_in_thread(app) as url:
            health, replies = asyncio.run(asyncio.wait_for(main(url), 60))
    finally:
        busy.set()
        worker.shutdown()
    assert health["in_flight"] == 3
    statuses = sorted(status for status, _ in replies)
    assert statuses == [200, 200, 200, 429, 429, 429, 429, 429]
    for status, text in replies:
        if status == 429:
            assert json.loads(text)["error"]["code"] == "queue_full"
        else:
            assert text.endswith("data: [DONE]")
    assert app.state.service.in_flight == 0


@pytest.fixture(scope="module")
def slow_server(tiny_model_dir):
    """A server whose model takes at least 10 ms per token, so 200 tokens outlast any client."""
    from deepapps_nlp import Chat
    from deepapps_nlp.loadtest import serve_in_thread
    from deepapps_nlp.server import create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=12)
    original = chat.decode

    def slow_decode(*args, **kwargs):
        for token in original(*args, **kwargs):
            time.sleep(0.01)
            yield token

    chat.decode = slow_decode
    app = create_app({"tiny": chat})
    with serve_in_thread(app) as url:
        yield {"url": url + "/v1", "chat": chat, "service": app.state.service}


LONG = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "a long story"}],
    "max_tokens": 200,
    "min_tokens": 200,
}


def test_client_disconnect_stops_generation(slow_server):
    service = slow_server["service"]
    before = service.cancelled
    with httpx.stream(
        "POST", slow_server["url"] + "/chat/completions", json={**LONG, "stream": True}, timeout=60
    ) as r:
        n = 0
        for line in r.iter_lines():
            if line.startswith("data: {"):
                n += 1
            if n >= 3:
                break  # leave mid-stream: closing the response drops the connection
    _wait_until(lambda: service.cancelled > before and service.in_flight == 0)
    reason, tokens = service.finished[-1][1:]
    assert reason == "cancelled" and 2 <= tokens < 200
    assert not slow_server["chat"].loaded.lock.locked()


def test_non_streaming_client_that_leaves_is_cancelled(slow_server):
    """A non-streaming request whose client gives up is not decoded to the end."""
    service = slow_server["service"]
    before = service.cancelled
    with pytest.raises(httpx.TimeoutException):
        httpx.post(slow_server["url"] + "/chat/completions", json=LONG, timeout=0.5)
    _wait_until(lambda: service.cancelled > before and service.in_flight == 0)
    reason, tokens = service.finished[-1][1:]
    assert reason == "cancelled" and tokens < 200
    assert not slow_server["chat"].loaded.lock.locked()


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


def test_ctrl_c_during_a_job_stops_the_main_thread_executor():
    """A Ctrl-C that lands while a job runs leaves run() (the server stops) and fails that job's
    request; it used to be handed to the request as its error and the server kept running."""
    from deepapps_nlp.server import MainThreadExecutor

    def interrupted():
        raise KeyboardInterrupt

    ex = MainThreadExecutor()
    job = ex.submit(interrupted)
    after = ex.submit(lambda: 1)
    with pytest.raises(KeyboardInterrupt):
        ex.run(keep_going=lambda: True)  # without the fix this never returns
    with pytest.raises(RuntimeError, match="shutting down"):
        job.result(timeout=1)
    assert not after.done()  # left for shutdown() to cancel
    ex.shutdown()
    assert after.cancelled()


def test_serve_decodes_on_the_main_thread_and_reports_a_busy_port(tiny_model_dir, monkeypatch):
    from deepapps import DeepAppsError
    from deepapps_nlp import Chat
    from deepapps_nlp.loadtest import free_port
    from deepapps_nlp.server import serve

    monkeypatch.delenv("DEEPAPPS_API_KEY", raising=False)
    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=4)
    expected = _solo(chat, "hi").text
    port = free_port()
    threads: list[str] = []
    original = chat.decode

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        yield from original(*args, **kwargs)

    chat.decode = spy
    replies: list = []  # filled by the client thread, checked here (a failure there is not lost)

    stop = threading.Event()

    def client():
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": chat.model_name, "messages": [{"role": "user", "content": "hi"}]}
        try:
            for _ in range(100):
                try:
                    replies.append(httpx.post(url, json=body, timeout=30))
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
        finally:
            stop.set()  # whatever happened (a Ctrl-C from here could be lost to another
            # library's SIGINT handler installed earlier in the same test process)

    t = threading.Thread(target=client, daemon=True)
    t.start()
    serve(chat, port=port, log_level="warning", stop=stop)
    t.join(timeout=5)
    assert replies, "the client never got an answer"
    assert replies[0].status_code == 200, replies[0].text
    assert replies[0].json()["choices"][0]["message"]["content"] == expected
    assert threads and threads[0] == threading.main_thread().name

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(DeepAppsError, match="could not start"):
            serve(chat, port=busy.getsockname()[1], log_level="critical")


def test_loadtest_smoke(tiny_model_dir):
    """`python -m deepapps_nlp.loadtest` in small: 4 honest streams beside every abusive client."""
    from deepapps_nlp.loadtest import LoadPlan, run_loadtest

    plan = LoadPlan(honest=4, max_tokens=4, timeout_s=120, big_body_bytes=2_000_000)
    report = run_loadtest(str(tiny_model_dir), plan, server="thread", device="cpu")
    assert report["pass"], report["checks"]
    assert report["honest"]["whole_answers"] == 4
    assert report["abusive"]["body_big_chunked"] == {"expected": 413, "status": 413}
    assert report["burst"]["sent"] == 20 and report["burst"]["rejected_429"] >= 1
    assert report["cancelled_replies"] >= 1 and report["health"]["samples"] > 0
