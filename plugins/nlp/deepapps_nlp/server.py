"""An OpenAI-compatible chat server: ``deepapps chat serve``.

Endpoints: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``
(JSON, or Server-Sent Events with ``"stream": true`` ending in ``data: [DONE]``), ``GET /health``.

- Binds 127.0.0.1 by default; ``api_key`` (or ``DEEPAPPS_API_KEY``) requires
  ``Authorization: Bearer <key>``.
- Requests are served one at a time per model, first come first served (an ``asyncio.Lock``,
  FIFO); at most ``max_queue`` requests wait, the next gets ``429``. Replies are never mixed:
  one generation runs at a time on a model object.
- Bad requests get OpenAI-style bodies ``{"error": {"message", "type", "param", "code"}}``
  with a 4xx status, and the server keeps serving.
- A client that disconnects mid-stream cancels its generation at the next token.
- Decoding never runs on the event loop. :func:`serve` (``deepapps chat serve``) runs the HTTP
  server on a background thread and decodes on the main thread, where torch's OpenMP workers
  run fastest (on 2 cores we measured generation ~25% slower from a secondary thread);
  an app made with :func:`create_app` alone decodes on one persistent worker thread per model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from deepapps import InputError

from .chat import Chat, ChatResult

SAMPLING_FIELDS = ("temperature", "top_p", "stop", "seed", "min_tokens")


class APIError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", param=None, code=None
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class MainThreadExecutor(Executor):
    """An executor whose jobs run on the thread that calls :meth:`run` (the main thread in
    :func:`serve`), one at a time in submission order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._closed:
            raise RuntimeError("the server is shutting down")
        future: Future = Future()
        self._jobs.put((future, fn, args, kwargs))
        return future

    def run(self, keep_going) -> None:
        """Run jobs until ``keep_going()`` turns false (checked at least every 0.2 s)."""
        while keep_going():
            try:
                future, fn, args, kwargs = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
                future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        while True:
            try:
                future, *_ = self._jobs.get_nowait()
            except queue.Empty:
                return
            future.cancel()


class ServedModel:
    """A chat model behind the server, with its FIFO gate, queue count and decoding executor."""

    def __init__(
        self, name: str, chat: Chat, aliases: tuple[str, ...] = (), worker: Executor | None = None
    ) -> None:
        self.name, self.chat, self.aliases = name, chat, aliases
        self.gate = asyncio.Lock()
        self.waiting = 0
        self.worker = worker or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"deepapps-decode-{name}"
        )
        self.created = int(time.time())


def create_app(
    chats: Chat | dict[str, Chat],
    api_key: str | None = None,
    max_queue: int = 64,
    max_tokens_limit: int | None = None,
    worker: Executor | None = None,
):
    """A FastAPI app serving ``chats`` (one Chat, or ``{model id: Chat}``).

    ``worker``: where replies are decoded (default: one thread per model; :func:`serve` passes a
    :class:`MainThreadExecutor`)."""
    if isinstance(chats, Chat):
        chats = {chats.model_name: chats}
    served: dict[str, ServedModel] = {}
    for name, chat in chats.items():
        aliases = _aliases(name)
        served[name] = ServedModel(name, chat, aliases, worker=worker)
    lookup = {alias: m for m in served.values() for alias in (m.name, *m.aliases)}
    api_key = api_key if api_key is not None else os.environ.get("DEEPAPPS_API_KEY") or None

    app = FastAPI(title="deepapps chat (OpenAI-compatible)", docs_url=None, redoc_url=None)
    app.state.served = served
    app.state.finished = deque(maxlen=256)  # (request id, finish_reason, completion_tokens) per reply
    app.state.active = 0

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(
            APIError(exc.status_code, str(exc.detail), kind).body(), status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        body = APIError(500, f"internal error: {type(exc).__name__}: {exc}", "server_error").body()
        return JSONResponse(body, status_code=500)

    def check_key(request: Request) -> None:
        if not api_key:
            return
        header = request.headers.get("authorization", "")
        if header != f"Bearer {api_key}":
            raise APIError(
                401,
                "Incorrect or missing API key: send 'Authorization: Bearer <key>'.",
                "invalid_request_error",
                code="invalid_api_key",
            )

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": list(served), "active": app.state.active}

    @app.get("/v1/models")
    async def list_models(request: Request):
        check_key(request)
        return {"object": "list", "data": [_model_card(m) for m in served.values()]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str, request: Request):
        check_key(request)
        if model_id not in lookup:
            raise _unknown_model(model_id, served)
        return _model_card(lookup[model_id])

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        check_key(request)
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise APIError(400, f"We could not parse the JSON body of your request ({exc}).") from exc
        if not isinstance(body, dict):
            raise APIError(400, "The request body must be a JSON object.")
        model_id = body.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise APIError(400, "you must provide a model parameter", param="model")
        if model_id not in lookup:
            raise _unknown_model(model_id, served)
        sm = lookup[model_id]
        if "messages" not in body:
            raise APIError(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not isinstance(body["messages"], list) or not body["messages"]:
            raise APIError(
                400, "'messages' must be a non-empty array of {role, content} objects.", param="messages"
            )
        options = _options(body, sm.chat, max_tokens_limit)
        stream_flag = body.get("stream", False)
        if not isinstance(stream_flag, bool):
            raise APIError(400, "'stream' must be a boolean.", param="stream")
        try:
            chat_stream = sm.chat.stream_reply(body["messages"], **options)
        except InputError as exc:
            text = str(exc)
            if "context window" in text:
                raise APIError(400, text, param="messages", code="context_length_exceeded") from exc
            raise APIError(
                400, text, param="messages" if "messages" in text or "message" in text else None
            ) from exc
        if sm.waiting >= max_queue:
            raise APIError(
                429,
                f"The server is busy: {sm.waiting} requests are waiting for {sm.name}; retry later.",
                "rate_limit_error",
                code="queue_full",
            )
        rid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        include_usage = (
            bool((body.get("stream_options") or {}).get("include_usage"))
            if isinstance(body.get("stream_options"), dict)
            else False
        )
        if stream_flag:
            gen = _sse(app, sm, chat_stream, rid, created, include_usage)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(gen, media_type="text/event-stream", headers=headers)
        sm.waiting += 1
        waiting = True
        try:
            async with sm.gate:
                sm.waiting -= 1
                waiting = False
                app.state.active += 1
                try:
                    result = await asyncio.get_running_loop().run_in_executor(
                        sm.worker, _consume, chat_stream
                    )
                finally:
                    app.state.active -= 1
        finally:
            if waiting:
                sm.waiting -= 1
        app.state.finished.append((rid, result.finish_reason, result.completion_tokens))
        return {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": sm.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.text},
                    "finish_reason": result.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": _usage(result),
            "system_fingerprint": None,
            "deepapps": _extras(result),
        }

    return app


def _aliases(name: str) -> tuple[str, ...]:
    try:
        from deepapps import registry

        if registry.has_model(name):
            return tuple(registry.model(name).aliases)
    except Exception:  # a path-named model has no registry entry
        pass
    return ()


def _model_card(m: ServedModel) -> dict[str, Any]:
    return {
        "id": m.name,
        "object": "model",
        "created": m.created,
        "owned_by": "deepapps",
        "context_window": m.chat.context_window,
    }


def _unknown_model(model_id: str, served: dict[str, ServedModel]) -> APIError:
    return APIError(
        404,
        f"The model '{model_id}' does not exist on this server. Available: {', '.join(served)}.",
        "invalid_request_error",
        param="model",
        code="model_not_found",
    )


def _options(body: dict[str, Any], chat: Chat, max_tokens_limit: int | None) -> dict[str, Any]:
    limit = max_tokens_limit or chat.context_window
    options: dict[str, Any] = {}
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            value = body[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise APIError(400, f"'{key}' must be an integer, got {value!r}.", param=key)
            if value < 1:
                raise APIError(
                    400, f"'{key}' must be at least 1, got {value}.", param=key, code="invalid_value"
                )
            if value > limit:
                raise APIError(
                    400,
                    f"'{key}' is {value}, but this model's context window is {chat.context_window} tokens "
                    f"(limit {limit}); lower it.",
                    param=key,
                    code="invalid_value",
                )
            options["max_tokens"] = value
            break
    n = body.get("n", 1)
    if n not in (1, None):
        raise APIError(400, "Only n=1 is supported.", param="n")
    for key in SAMPLING_FIELDS:
        if body.get(key) is not None:
            options[key] = body[key]
    if isinstance(options.get("stop"), list) and len(options["stop"]) > 4:
        raise APIError(400, "'stop' may hold at most 4 sequences.", param="stop")
    for key, value in list(options.items()):
        if key in ("temperature", "top_p") and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            raise APIError(400, f"'{key}' must be a number, got {value!r}.", param=key)
    try:  # validate ranges here so the error names its parameter
        chat._params(dict(options))
    except InputError as exc:
        param = str(exc).split(" ", 1)[0]
        raise APIError(400, str(exc), param=param if param in body else None) from exc
    return options


def _consume(stream) -> ChatResult:
    for _ in stream:
        pass
    return stream.result


def _usage(result: ChatResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.total_tokens,
    }


def _extras(result: ChatResult) -> dict[str, Any]:
    return {
        "citations": result.citations,
        "trimmed_messages": result.trimmed_messages,
        "time_to_first_token_ms": result.time_to_first_token_ms,
    }


def _chunk(rid: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> str:
    obj = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return f"data: {json.dumps(obj)}\n\n"


async def _sse(app, sm: ServedModel, chat_stream, rid: str, created: int, include_usage: bool):
    """Server-Sent Events for one reply; cancels generation if the client goes away."""
    import anyio

    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue()
    job = None

    def worker() -> None:
        try:
            for piece in chat_stream:
                loop.call_soon_threadsafe(q.put_nowait, ("delta", piece))
            loop.call_soon_threadsafe(q.put_nowait, ("done", chat_stream.result))
        except BaseException as exc:  # noqa: BLE001 - reported to the client
            loop.call_soon_threadsafe(q.put_nowait, ("error", exc))

    sm.waiting += 1
    acquired = False
    try:
        await sm.gate.acquire()
        acquired = True
        sm.waiting -= 1
        app.state.active += 1
        job = sm.worker.submit(worker)
        yield _chunk(rid, created, sm.name, {"role": "assistant", "content": ""}, None)
        while True:
            kind, value = await q.get()
            if kind == "delta":
                yield _chunk(rid, created, sm.name, {"content": value}, None)
            elif kind == "done":
                result: ChatResult = value
                app.state.finished.append((rid, result.finish_reason, result.completion_tokens))
                yield _chunk(rid, created, sm.name, {}, result.finish_reason)
                if include_usage:
                    usage = {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": sm.name,
                        "choices": [],
                        "usage": _usage(result),
                    }
                    yield f"data: {json.dumps(usage)}\n\n"
                yield "data: [DONE]\n\n"
                break
            else:
                err = APIError(500, f"generation failed: {type(value).__name__}: {value}", "server_error")
                yield f"data: {json.dumps(err.body())}\n\n"
                break
    finally:
        if not acquired:
            sm.waiting -= 1
        if job is not None:
            chat_stream.cancel()  # no-op when it already finished
            with anyio.CancelScope(shield=True):
                await asyncio.wrap_future(job)
            if chat_stream.cancelled and chat_stream.result is not None:
                app.state.finished.append((rid, "cancelled", chat_stream.result.completion_tokens))
            app.state.active -= 1
        if acquired:
            sm.gate.release()


def serve(
    chats: Chat | dict[str, Chat],
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    max_queue: int = 64,
    log_level: str = "info",
) -> None:
    """Run the server until interrupted: HTTP on a background thread, decoding on this thread."""
    import uvicorn

    worker = MainThreadExecutor()
    app = create_app(chats, api_key=api_key, max_queue=max_queue, worker=worker)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))

    def run_http() -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits this way when it cannot bind
            server.run()

    http = threading.Thread(target=run_http, name="deepapps-http", daemon=True)
    http.start()
    try:
        worker.run(keep_going=http.is_alive)
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        worker.shutdown()
        http.join(timeout=10)
    if not server.started:
        from deepapps.errors import DeepAppsError

        raise DeepAppsError(
            f"the server could not start on {host}:{port} (see the message above); "
            "is another process using that port? Try --port with a free one"
        )
