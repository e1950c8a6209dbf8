"""Load test of the chat server: honest streaming clients and abusive ones at the same time.

    python -m deepapps_nlp.loadtest --json                  # tiny random model, no pull needed
    python -m deepapps_nlp.loadtest --json --model smollm2-135m-instruct --max-tokens 32
    python -m deepapps_nlp.loadtest --json --model smollm2-135m-instruct --engine llama.cpp

Starts the real ``deepapps chat serve`` on a free 127.0.0.1 port (``--server thread`` runs
:func:`~deepapps_nlp.server.create_app` under uvicorn in this process instead, for the smoke
test), then at once: ``--honest`` streaming clients, each with its own prompt; abusive clients
(a 20 MB body, declared and chunked; deeply nested JSON; 1,000 messages; a 100,000-character
message; too many and too long stop strings; NaN; text/plain; no API key; a foreign Host
header); a burst of ``max_queue + 8`` requests; and two clients that leave mid-reply. It checks
that every honest client gets its whole answer (the same text a lone request gets afterwards),
every abusive one its 4xx, the burst some 429s, that abandoned replies are cancelled and the
admission count returns to zero; and it samples ``/health`` latency throughout. It prints one
JSON object (figures, and pass/fail per check) and exits 1 if a check failed. Loopback only;
bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

HEALTH_P95_BOUND_MS = 1000.0  # /health must stay this responsive under the whole load


@dataclass
class LoadPlan:
    """Sizes of one load-test run."""

    honest: int = 32
    max_tokens: int = 16
    max_queue: int | None = None  # default: honest + 8
    timeout_s: float = 300.0
    health_interval_s: float = 0.05
    big_body_bytes: int = 20_000_000

    @property
    def queue(self) -> int:
        return self.max_queue if self.max_queue is not None else self.honest + 8


# servers -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in a daemon thread; yield the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="deepapps-test-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def serve_in_process(
    model: str, device: str, max_queue: int, api_key: str, engine: str = "auto"
) -> Iterator[str]:
    """``deepapps chat serve`` in its own process (the key goes through the environment)."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "deepapps.cli", "chat", "serve", "--model", model, "--device", device]
    cmd += ["--port", str(port), "--max-queue", str(max_queue), "--engine", engine]
    log = tempfile.TemporaryFile()
    env = {**os.environ, "DEEPAPPS_API_KEY": api_key}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-1500:]
                raise RuntimeError(f"`deepapps chat serve` did not start:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# clients -------------------------------------------------------------------------------------
def _prompt(i: int) -> str:
    return f"Question {i}: what about item {i * 7}?"


async def _honest(client, model: str, i: int, max_tokens: int) -> dict[str, Any]:
    """One streaming client: its text, whether the stream ended properly, and timings."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": _prompt(i)}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": True,
    }
    out: dict[str, Any] = {"status": None, "text": "", "done": False, "finish": None}
    t0 = time.perf_counter()
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        out["status"] = r.status_code
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                out["done"] = True
            elif line.startswith("data: {"):
                obj = json.loads(line[6:])
                for choice in obj.get("choices", []):
                    if choice["delta"].get("content"):
                        out.setdefault("ttft_s", time.perf_counter() - t0)
                        out["text"] += choice["delta"]["content"]
                    out["finish"] = choice.get("finish_reason") or out["finish"]
    out["total_s"] = time.perf_counter() - t0
    return out


def _abusive_requests(model: str, big_bytes: int) -> dict[str, tuple[int, dict[str, Any]]]:
    """Name -> (expected status, httpx request keywords)."""
    user = [{"role": "user", "content": "hi"}]
    ok = {"model": model, "messages": user}
    big = b'{"model": "x", "messages": [{"role": "user", "content": "' + b"a" * big_bytes + b'"}]}'

    async def chunked():
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    deep = b'{"model": "x", "messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    nested = b'{"model": "x", "messages": [{"role": "user", "content": "hi", "x": ' + b"[" * 500
    nested += b"]" * 500 + b"}]}"
    return {
        "body_big_declared": (413, {"content": big}),
        "body_big_chunked": (413, {"content": chunked()}),
        "json_nested_200000": (400, {"content": deep}),
        "json_nested_500": (400, {"content": nested}),
        "messages_1000": (400, {"json": {**ok, "messages": user * 1000}}),
        "message_100k_chars": (
            400,
            {"json": {**ok, "messages": [{"role": "user", "content": "a" * 100_000}]}},
        ),
        "stop_5_strings": (400, {"json": {**ok, "stop": ["a", "b", "c", "d", "e"]}}),
        "stop_10k_chars": (400, {"json": {**ok, "stop": "z" * 10_000}}),
        "json_nan": (400, {"content": b'{"model": "x", "messages": [], "temperature": NaN}'}),
        "content_type_text_plain": (
            415,
            {"content": json.dumps(ok), "headers": {"Content-Type": "text/plain"}},
        ),
        "no_api_key": (401, {"json": ok, "headers": {"Authorization": ""}}),
        "foreign_host_header": (400, {"json": ok, "headers": {"Host": "attacker.example"}}),
    }


async def _abusive(client, name: str, expected: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    try:
        r = await client.post("/v1/chat/completions", headers=headers, **kwargs)
        status = r.status_code
        ok_body = status >= 400 and "error" in r.json()
    except Exception as exc:  # noqa: BLE001 - a transport error is a failed check, reported
        return {"name": name, "expected": expected, "status": f"{type(exc).__name__}", "pass": False}
    return {"name": name, "expected": expected, "status": status, "pass": status == expected and ok_body}


async def _leaver(client, model: str, stream: bool, max_tokens: int) -> dict[str, Any]:
    """A client that leaves mid-reply: after two chunks (stream) or after 0.3 s (non-streaming)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Tell me a very long story."}],
        "max_tokens": max_tokens,
        "min_tokens": max_tokens,
        "stream": stream,
    }
    if not stream:
        with contextlib.suppress(Exception):
            await client.post("/v1/chat/completions", json=body, timeout=0.3)
        return {"stream": False, "left": True}
    chunks = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            chunks += line.startswith("data: {")
            if chunks >= 2:
                break
    return {"stream": True, "status": r.status_code, "left": chunks >= 2}


async def _burst(client, model: str, n: int) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "burst"}], "max_tokens": 4}
    replies = await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for _ in range(n)))
    codes = [r.status_code for r in replies]
    return {
        "sent": n,
        "ok": codes.count(200),
        "rejected_429": codes.count(429),
        "other": len(codes) - codes.count(200) - codes.count(429),
    }


async def _sample_health(client, stop: asyncio.Event, interval: float, samples: list[float]) -> None:
    import httpx

    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            ok = (await client.get("/health", timeout=10)).status_code == 200
        except httpx.HTTPError:
            ok = False
        samples.append((time.perf_counter() - t0) * 1e3 if ok else float("inf"))  # a failure fails p95
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def _wait_for(client, predicate, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        health = (await client.get("/health")).json()
        if predicate(health) or time.monotonic() > deadline:
            return health
        await asyncio.sleep(0.02)


# the run -------------------------------------------------------------------------------------
async def _drive(url: str, api_key: str, plan: LoadPlan) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=400, max_keepalive_connections=50)
    auth = {"Authorization": f"Bearer {api_key}"}
    async with (
        httpx.AsyncClient(base_url=url, headers=auth, timeout=plan.timeout_s, limits=limits) as client,
        httpx.AsyncClient(base_url=url, timeout=plan.timeout_s) as probe,
    ):
        card = (await client.get("/v1/models")).json()["data"][0]
        model, context = card["id"], card["context_window"]
        stop, samples = asyncio.Event(), []
        sampler = asyncio.create_task(_sample_health(probe, stop, plan.health_interval_s, samples))
        before = (await probe.get("/health")).json()
        t0 = time.perf_counter()
        long_reply = max(1, min(512, context - 64))
        admitted = [
            asyncio.create_task(_honest(client, model, i, plan.max_tokens)) for i in range(plan.honest)
        ]
        admitted += [asyncio.create_task(_leaver(client, model, s, long_reply)) for s in (True, False)]
        # the burst comes once these are admitted, so only burst requests can meet the bound
        await _wait_for(
            probe, lambda h: h["in_flight"] >= len(admitted) or all(t.done() for t in admitted), 60
        )
        abusers = [
            _abusive(client, n, e, kw) for n, (e, kw) in _abusive_requests(model, plan.big_body_bytes).items()
        ]
        abusive, burst = await asyncio.gather(asyncio.gather(*abusers), _burst(client, model, plan.queue + 8))
        *honest_out, leave_stream, leave_plain = await asyncio.gather(*admitted)
        others = (abusive, burst, leave_stream, leave_plain)
        load_s = time.perf_counter() - t0
        after = await _wait_for(probe, lambda h: h["in_flight"] == 0, 60)
        stop.set()
        await sampler
        solo = [await _solo(client, model, i, plan.max_tokens) for i in range(plan.honest)]
    return _report(plan, honest_out, solo, others, before, after, samples, load_s)


async def _solo(client, model: str, i: int, max_tokens: int) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": _prompt(i)}],
        "temperature": 0,
        "max_tokens": max_tokens,
    }
    return (await client.post("/v1/chat/completions", json=body)).json()["choices"][0]["message"]["content"]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _report(plan, honest, solo, others, before, after, samples, load_s) -> dict[str, Any]:
    abusive, burst, leave_stream, leave_plain = others
    whole = [
        h["status"] == 200 and h["done"] and h["finish"] in ("stop", "length") and h["text"] == s
        for h, s in zip(honest, solo, strict=True)
    ]
    cancelled = after["cancelled"] - before["cancelled"]
    health = {
        "samples": len(samples),
        "p50_ms": _percentile(samples, 0.5),
        "p95_ms": _percentile(samples, 0.95),
        "max_ms": _percentile(samples, 1.0),
    }
    checks = {
        "honest_clients_get_their_whole_answer": all(whole),
        **{f"abusive_{a['name']}_gets_{a['expected']}": a["pass"] for a in abusive},
        "burst_gets_429_beyond_the_queue": burst["rejected_429"] >= 1 and burst["other"] == 0,
        "leaving_clients_are_cancelled": leave_stream.get("left", False) and cancelled >= 1,
        "admission_count_returns_to_zero": after["in_flight"] == 0,
        f"health_p95_under_{int(HEALTH_P95_BOUND_MS)}_ms": (health["p95_ms"] or 0) < HEALTH_P95_BOUND_MS,
    }
    ttft = [h["ttft_s"] * 1e3 for h in honest if "ttft_s" in h]
    return {
        "plan": {**asdict(plan), "max_queue": plan.queue, "burst": plan.queue + 8},
        "load_s": round(load_s, 2),
        "honest": {
            "clients": len(honest),
            "whole_answers": sum(whole),
            "ttft_ms_p50": _percentile(ttft, 0.5),
            "ttft_ms_p95": _percentile(ttft, 0.95),
            "total_s_max": round(max((h["total_s"] for h in honest), default=0.0), 2),
        },
        "abusive": {a["name"]: {"expected": a["expected"], "status": a["status"]} for a in abusive},
        "burst": burst,
        "cancelled_replies": cancelled,
        "health": health,
        "checks": checks,
        "pass": all(checks.values()),
    }


def run_loadtest(
    model: str | None = None,
    plan: LoadPlan | None = None,
    server: str = "process",
    device: str = "auto",
    engine: str = "auto",
) -> dict[str, Any]:
    """Run the load test and return its report (``report["pass"]``: every check passed)."""
    plan = plan or LoadPlan()
    api_key = "sk-load-" + secrets.token_hex(8)
    given = model is not None
    with tempfile.TemporaryDirectory(prefix="deepapps-loadtest-") as tmp:
        if model is None:
            from .testing import build_tiny_chat_model

            model = str(build_tiny_chat_model(tmp))
        with _server(server, model, device, plan, api_key, engine) as url:
            report = asyncio.run(asyncio.wait_for(_drive(url, api_key, plan), plan.timeout_s))
    report["model"] = model if given else "tiny random Llama (deepapps_nlp.testing)"
    report["server"] = server
    report["engine"] = engine
    return report


@contextlib.contextmanager
def _server(kind: str, model: str, device: str, plan: LoadPlan, api_key: str, engine: str) -> Iterator[str]:
    if kind == "process":
        with serve_in_process(model, device, plan.queue, api_key, engine) as url:
            yield url
        return
    from deepapps.runtime import select_device

    from .chat import Chat
    from .server import LOOPBACK_NAMES, ServerLimits, create_app

    chat = Chat(model, select_device(device), engine=engine)
    app = create_app(
        chat, api_key=api_key, limits=ServerLimits(max_queue=plan.queue), allowed_hosts=LOOPBACK_NAMES
    )
    with serve_in_thread(app) as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deepapps_nlp.loadtest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default=None, help="Model to serve (default: a tiny random model).")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--engine", choices=["auto", "llama.cpp", "transformers"], default="auto")
    parser.add_argument("--honest", type=int, default=32, help="Honest streaming clients.")
    parser.add_argument("--max-tokens", type=int, default=16, help="Tokens per honest answer.")
    parser.add_argument(
        "--max-queue", type=int, default=None, help="Server queue bound (default honest + 8)."
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="Bound on the whole run, seconds.")
    parser.add_argument("--server", choices=["process", "thread"], default="process")
    parser.add_argument("--json", action="store_true", help="Print the report as one JSON object.")
    args = parser.parse_args(argv)
    plan = LoadPlan(
        honest=args.honest, max_tokens=args.max_tokens, max_queue=args.max_queue, timeout_s=args.timeout
    )
    report = run_loadtest(args.model, plan, server=args.server, device=args.device, engine=args.engine)
    if args.json:
        print(json.dumps(report))
    else:
        for name, ok in report["checks"].items():
            print(f"{'PASS' if ok else 'FAIL'}  {name}")
        print(f"/health p50 {report['health']['p50_ms']} ms, p95 {report['health']['p95_ms']} ms")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
