"""Continuous batching (deepapps_nlp.batching): concurrent replies decoded together, each exactly
what it would be alone; slots, joining, leaving, cancelling; the server's --parallel slots."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

PROMPTS = [
    "hi",
    "The capital of France is Paris. Two plus two is four. " * 4,
    "def add(a, b):",
    "Refunds are possible within 30 days with the receipt. " * 2,
    "Our store opens at 9 am, Monday to Saturday. Hello!",
]


def _alone(chat, prompt, **options):
    """Token ids of ``prompt`` decoded on its own by the Chat API's decoding loop."""
    return list(chat.decode(chat.prepare(prompt, **options)))


def _read(stream, out):
    out[id(stream)] = stream.text()


def _batched_ids(batcher, requests, hold_loop=True):
    """Decode ``requests`` [(prompt, options)] together; every reader joins before the loop
    starts (it is held by a job), so all of them queue at once. Returns token ids per request."""
    release = threading.Event()
    if hold_loop:
        batcher.submit(release.wait, 30)
    streams = [batcher.stream_reply(p, **o) for p, o in requests]
    texts: dict[int, str] = {}
    readers = [threading.Thread(target=_read, args=(s, texts)) for s in streams]
    for t in readers:
        t.start()
    deadline = time.monotonic() + 30
    while batcher._inbox.qsize() < len(streams) and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in readers:
        t.join(60)
    assert all(s.result is not None for s in streams)
    return [s._deltas.ids for s in streams], streams


def test_greedy_replies_are_identical_to_decoding_each_alone(tiny_chat):
    from deepapps_nlp.batching import ContinuousBatcher

    requests = [
        (p, {"max_tokens": n, "temperature": 0}) for p, n in zip(PROMPTS, (30, 12, 40, 25, 18), strict=True)
    ]
    expected = [_alone(tiny_chat, p, **o) for p, o in requests]
    lengths = {len(tiny_chat.prepare(p)["input_ids"]) for p in PROMPTS}
    assert len(lengths) == len(PROMPTS)  # prompts of different lengths share the batch
    with ContinuousBatcher(tiny_chat, slots=3) as batcher:
        got, streams = _batched_ids(batcher, requests)
        assert batcher.peak_active == 3
        assert batcher.late_joins >= 2  # two requests waited for a slot and joined a running batch
    assert got == expected
    for s, ids in zip(streams, expected, strict=True):
        assert s.result.completion_tokens == len(ids)
        assert s.result.finish_reason == "length"
        assert s.result.text == tiny_chat.loaded.detokenize(ids)


def test_sampling_settings_and_seeds_are_per_slot(tiny_chat):
    from deepapps_nlp.batching import ContinuousBatcher

    requests = [
        (PROMPTS[0], {"temperature": 0.9, "top_p": 0.8, "seed": 7, "max_tokens": 20}),
        (PROMPTS[1], {"temperature": 0, "repetition_penalty": 1.5, "max_tokens": 20}),
        (
            PROMPTS[2],
            {"temperature": 1.3, "top_p": 1.0, "seed": 123, "repetition_penalty": 1.2, "max_tokens": 16},
        ),
        (PROMPTS[3], {"temperature": 0, "max_tokens": 9, "min_tokens": 9}),
    ]
    expected = [_alone(tiny_chat, p, **o) for p, o in requests]
    with ContinuousBatcher(tiny_chat, slots=4) as batcher:
        got, _ = _batched_ids(batcher, requests)
    assert got == expected
    assert got[0] != got[2][: len(got[0])]  # different seeds, different samples


def test_stop_strings_end_one_stream_and_free_its_slot(tiny_chat):
    from deepapps_nlp.batching import ContinuousBatcher

    full = tiny_chat.loaded.detokenize(_alone(tiny_chat, PROMPTS[2], max_tokens=30, temperature=0))
    stop = full[8:12]
    assert stop and full.find(stop) == 8
    with ContinuousBatcher(tiny_chat, slots=2) as batcher:
        (_, ids), streams = _batched_ids(
            batcher,
            [
                (PROMPTS[2], {"max_tokens": 30, "temperature": 0, "stop": [stop]}),
                (PROMPTS[0], {"max_tokens": 30}),
            ],
        )
        _wait_until(lambda: batcher.active == 0)
    stopped, other = streams
    assert stopped.result.text == full[:8]
    assert stopped.result.finish_reason == "stop"
    assert other.result.completion_tokens == 30


def test_cancel_frees_the_slot_for_the_next_request(tiny_chat):
    from deepapps_nlp.batching import ContinuousBatcher

    with ContinuousBatcher(tiny_chat, slots=1) as batcher:
        long = batcher.stream_reply("a long story", max_tokens=200, min_tokens=200)
        short = batcher.stream_reply(PROMPTS[0], max_tokens=6, temperature=0)
        texts: dict[int, str] = {}
        pieces = iter(long)
        next(pieces)  # the long reply holds the only slot
        waiter = threading.Thread(target=_read, args=(short, texts))
        waiter.start()
        _wait_until(lambda: batcher.waiting == 1)
        long.cancel()
        rest = list(pieces)
        waiter.join(30)
        assert long.result.finish_reason == "cancelled"
        assert long.result.completion_tokens < 200
        assert rest is not None
        assert short.result.completion_tokens == 6
        assert short._deltas.ids == _alone(tiny_chat, PROMPTS[0], max_tokens=6, temperature=0)
        _wait_until(lambda: batcher.active == 0)


def test_closing_a_stream_early_frees_its_slot(tiny_chat):
    from deepapps_nlp.batching import ContinuousBatcher

    with ContinuousBatcher(tiny_chat, slots=2) as batcher:
        stream = batcher.stream_reply("a long story", max_tokens=200, min_tokens=200)
        pieces = iter(stream)
        next(pieces)
        pieces.close()
        _wait_until(lambda: batcher.active == 0)
        assert batcher.replies(["hi"], max_tokens=4, temperature=0)[0].completion_tokens == 4


def test_replies_helper_and_python_api(tiny_chat):
    from deepapps_nlp.batching import ContinuousBatcher

    with ContinuousBatcher(tiny_chat, slots=8) as batcher:
        results = batcher.replies(PROMPTS, max_tokens=10, temperature=0)
    assert [r.text for r in results] == [tiny_chat(p, max_tokens=10, temperature=0).text for p in PROMPTS]
    assert all(r.time_to_first_token_ms is not None for r in results)


def test_bad_slots_and_unbatchable_engines_are_refused(tiny_chat):
    from deepapps import InputError
    from deepapps_nlp.batching import ContinuousBatcher, batching_unsupported

    for bad in (0, -1, 1000, 2.5, True):
        with pytest.raises(InputError, match="parallel"):
            ContinuousBatcher(tiny_chat, slots=bad)

    class LlamaCppChat:
        engine = "llama.cpp"
        model_name = "m"

    assert "llama.cpp engine" in batching_unsupported(LlamaCppChat())
    with pytest.raises(InputError, match="--parallel 1"):
        ContinuousBatcher(LlamaCppChat())
    assert batching_unsupported(tiny_chat) is None


def test_shutdown_ends_waiting_replies_as_cancelled(tiny_chat):
    from deepapps_nlp.batching import ContinuousBatcher

    batcher = ContinuousBatcher(tiny_chat, slots=1)
    release = threading.Event()
    batcher.submit(release.wait, 30)
    stream = batcher.stream_reply("hi", max_tokens=50)
    texts: dict[int, str] = {}
    reader = threading.Thread(target=_read, args=(stream, texts))
    reader.start()
    _wait_until(lambda: batcher._inbox.qsize() >= 1)
    batcher._closed = True  # as shutdown() does, while the loop is still held
    release.set()
    reader.join(30)
    assert stream.result.finish_reason == "cancelled"
    with pytest.raises(RuntimeError, match="shut down"):
        batcher.submit(print)


def test_bench_reports_batched_speedup_and_ttft(tiny_model_dir):
    from deepapps_nlp.evaluation import bench

    report = bench(str(tiny_model_dir), max_tokens=6, repeats=1, server=False, streams=3).to_dict()
    figures = report["figures"]
    assert figures["batched_speedup_3_streams"]["value"] > 0
    assert figures["batched_tokens_per_s_3_streams"]["value"] > 0
    assert figures["single_stream_tokens_per_s"]["value"] > 0
    assert figures["batched_greedy_identical_3_streams"]["value"] == 1
    batched = report["setup"]["batched"]
    assert len(batched["ttft_ms"]) == 3
    assert figures["batched_ttft_p95_ms_3_streams"]["value"] == round(max(batched["ttft_ms"]), 1)


# the server ------------------------------------------------------------------------------------
def test_server_parallel_slots_answer_like_lone_requests(tiny_chat):
    from deepapps_nlp.loadtest import serve_in_thread
    from deepapps_nlp.server import create_app

    app = create_app({"tiny": tiny_chat}, parallel=4)
    served = app.state.served["tiny"]
    assert served.slots == 4 and served.batcher is not None
    bodies = [
        {"model": "tiny", "messages": [{"role": "user", "content": p}], "max_tokens": 40, "temperature": 0}
        for p in PROMPTS
    ]

    async def main(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            release = threading.Event()
            served.batcher.submit(release.wait, 30)  # hold the loop until every request is in
            tasks = [asyncio.create_task(client.post("/v1/chat/completions", json=b)) for b in bodies]
            while app.state.service.in_flight < len(bodies):
                await asyncio.sleep(0.01)
            health = (await client.get("/health")).json()
            release.set()
            return health, await asyncio.gather(*tasks)

    with serve_in_thread(app) as url:
        health, replies = asyncio.run(asyncio.wait_for(main(url), 60))
    assert health["slots"]["tiny"]["total"] == 4
    for body, r in zip(bodies, replies, strict=True):
        assert r.status_code == 200
        expected = tiny_chat(body["messages"], max_tokens=40, temperature=0)
        assert r.json()["choices"][0]["message"]["content"] == expected.text
    assert served.batcher.peak_active == 4
    assert app.state.service.in_flight == 0


def test_a_llama_cpp_model_keeps_the_one_at_a_time_queue(tiny_chat):
    import copy

    from deepapps_nlp.server import ServedModel

    other = copy.copy(tiny_chat)
    other.loaded = copy.copy(tiny_chat.loaded)
    other.loaded.engine = "llama.cpp"
    served = ServedModel("m", other, parallel=4)
    assert served.batcher is None and served.slots == 1
    assert served.consumers is served.worker
    assert ServedModel("t", tiny_chat, parallel=4).slots == 4


def test_more_requests_than_slots_queue_with_the_same_429_policy(tiny_chat):
    from deepapps_nlp.loadtest import serve_in_thread
    from deepapps_nlp.server import ServerLimits, create_app

    app = create_app({"tiny": tiny_chat}, limits=ServerLimits(max_queue=2), parallel=2)
    batcher = app.state.served["tiny"].batcher
    release = threading.Event()
    batcher.submit(release.wait, 60)  # the loop is busy: nothing is prepared or decoded meanwhile
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
        "max_tokens": 3,
    }

    async def one(client):
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            return r.status_code, "".join([line async for line in r.aiter_lines()])

    async def main(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            tasks = [asyncio.create_task(one(client)) for _ in range(8)]
            while sum(t.done() for t in tasks) < 4:  # 2 slots + 2 waiting admitted, 4 refused
                await asyncio.sleep(0.02)
            health = (await client.get("/health")).json()
            release.set()
            return health, await asyncio.gather(*tasks)

    try:
        with serve_in_thread(app) as url:
            health, replies = asyncio.run(asyncio.wait_for(main(url), 60))
    finally:
        release.set()
    assert health["in_flight"] == 4
    assert sorted(status for status, _ in replies) == [200] * 4 + [429] * 4
    for status, text in replies:
        if status == 429:
            error = json.loads(text)["error"]
            assert error["code"] == "queue_full"
            assert "2 requests are waiting" in error["message"]
        else:
            assert text.endswith("data: [DONE]")
    assert app.state.service.in_flight == 0


def test_serve_cli_parallel_option(home):
    from click.testing import CliRunner

    from deepapps.cli import _add_plugin_commands, cli
    from deepapps_nlp.batching import DEFAULT_SLOTS

    _add_plugin_commands()
    runner = CliRunner()
    shown = runner.invoke(cli, ["chat", "serve", "--help"])
    assert "--parallel" in shown.output and f"default {DEFAULT_SLOTS}" in shown.output
    refused = runner.invoke(cli, ["chat", "serve", "--parallel", "0"], env={"DEEPAPPS_HOME": str(home)})
    assert refused.exit_code != 0
    assert "--parallel (slots) must be an integer from 1 to" in refused.output


def _wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


# the real default model ------------------------------------------------------------------------
@pytest.mark.slow
def test_real_model_greedy_batched_equals_alone(monkeypatch):
    """SmolLM2-135M (fp32): 4 prompts of different lengths decoded together, token for token
    the same as each decoded alone."""
    folder = Path(
        os.environ.get("DEEPAPPS_TEST_MODELS_HOME", Path.home() / ".cache" / "deepapps-test-models")
    )
    monkeypatch.setenv("DEEPAPPS_HOME", str(folder))
    import deepapps
    from deepapps.runtime.pull import pull
    from deepapps_nlp import Chat
    from deepapps_nlp.batching import ContinuousBatcher

    spec = deepapps.registry.model("smollm2-135m-instruct")
    pull(spec, progress=False)
    chat = Chat(spec, "cpu", "fp32", engine="transformers", temperature=0)
    prompts = [
        "What is 2 + 3?",
        "Write one sentence about the ocean.",
        "Explain in two sentences how photosynthesis works and why it matters for life on Earth.",
        "Hi",
    ]
    requests = [(p, {"max_tokens": 24}) for p in prompts]
    expected = [_alone(chat, p, **o) for p, o in requests]
    with ContinuousBatcher(chat, slots=4) as batcher:
        got, _ = _batched_ids(batcher, requests)
    assert got == expected
