"""An OpenAI-compatible chat server: ``deepapps chat serve``.

Endpoints: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``
(JSON, or Server-Sent Events with ``"stream": true`` ending in ``data: [DONE]``), ``GET /health``.

- Binds 127.0.0.1 by default and then answers only loopback ``Host`` names (DNS rebinding).
  ``api_key`` (or ``DEEPAPPS_API_KEY``) requires ``Authorization: Bearer <key>``, compared in
  constant time; an empty key is an error, and :func:`serve` refuses a non-loopback address
  without a key unless ``insecure=True``.
- Every request is bounded by :class:`ServerLimits` before any model work: body size (413),
  ``Content-Type: application/json`` (415), JSON nesting, message count and length, stop
  strings (400). Bad requests get OpenAI-style bodies ``{"error": {"message", "type", "param",
  "code"}}``; an unexpected failure is logged with its request id and answered with a generic
  500 that names the id, never the exception text.
- Admission is counted when a request is accepted, before any ``await``: at most
  ``max_queue`` requests wait behind the ones being served, the next gets ``429``.
- Prompt preparation (chat template, tokenising, history trimming, retrieval) and decoding
  run on the model's worker, never on the event loop, one job at a time in arrival order, so
  replies are never mixed and ``/health`` stays responsive under any request.
- ``parallel`` slots (``deepapps chat serve --parallel N``, transformers engine): up to N
  replies are decoded together by continuous batching (:mod:`deepapps_nlp.batching`); a
  request arriving meanwhile joins at the next step when a slot is free, else waits in the
  queue above (same 429 policy). Greedy replies are the same as one at a time.
- A client that disconnects, streaming or not, cancels its generation at the next token
  (or before it starts, if it was still queued).
- :func:`serve` (``deepapps chat serve``) runs the HTTP server on a background thread and
  decodes on the main thread, where torch's OpenMP workers run fastest (on 2 cores we
  measured generation ~25% slower from a secondary thread); an app made with
  :func:`create_app` alone uses one persistent worker thread per model.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import queue
import reprlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from deepapps import InputError

from .batching import run_job
from .chat import Chat, ChatResult, ChatStream

log = logging.getLogger(__name__)

SAMPLING_FIELDS = ("temperature", "top_p", "stop", "seed", "min_tokens")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
MAX_ERROR_CHARS = 600  # error messages never echo more of the request than this
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.manual_seed accepts


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask of the server; a request past any bound gets a 4xx before any
    model work. The defaults fit a model with a context window of a few thousand tokens.

    - ``max_body_bytes`` (1 MiB): request body; read in chunks and abandoned past the cap (413).
    - ``max_json_depth`` (32): nesting of arrays and objects in the body (400); a chat request
      needs 5.
    - ``max_messages`` (256): entries in ``messages`` (400).
    - ``max_message_chars`` (65,536): characters in one message's content (400).
    - ``max_stop`` (4, as OpenAI) and ``max_stop_chars`` (128): stop strings (400).
    - ``max_queue`` (64): requests that may wait when every decoding slot is busy (429 beyond).
    - ``max_tokens`` (None: the model's context window): the largest ``max_tokens`` accepted.
    """

    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    max_messages: int = 256
    max_message_chars: int = 65_536
    max_stop: int = 4
    max_stop_chars: int = 128
    max_queue: int = 64
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "max_tokens" and value is None:
                continue
            low = 0 if f.name == "max_queue" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"server limit {f.name} must be an integer >= {low}, got {value!r}")


class APIError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", param=None, code=None
    ):
        super().__init__(message)
        if len(message) > MAX_ERROR_CHARS:
            message = message[: MAX_ERROR_CHARS - 3] + "..."
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class _ClientGone(Exception):
    """The client disconnected before its reply was ready."""


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
                job = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            run_job(*job)  # a Ctrl-C during the job is raised on to serve(), which stops

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        while True:
            try:
                future, *_ = self._jobs.get_nowait()
            except queue.Empty:
                return
            future.cancel()


class ServedModel:
    """A chat model behind the server, with its admission count and its worker (where prompts
    are prepared and replies decoded, one job at a time in arrival order).

    With ``parallel`` > 1 (transformers engine) replies are decoded together by a
    :class:`~deepapps_nlp.batching.ContinuousBatcher` with that many slots: it is the worker
    (prompts are prepared on its loop, between steps), and each reply is read on a
    ``consumers`` thread. Other engines keep one reply at a time (``slots`` is then 1)."""

    def __init__(
        self,
        name: str,
        chat: Chat,
        aliases: tuple[str, ...] = (),
        worker: Executor | None = None,
        parallel: int = 1,
    ) -> None:
        self.name, self.chat, self.aliases = name, chat, aliases
        self.admitted = 0  # accepted requests not finished yet: `slots` served, the rest waiting
        self.batcher = _batcher(chat, parallel)
        self.slots = self.batcher.slots if self.batcher else 1
        if self.batcher:
            self.worker: Executor = self.batcher
            self.consumers: Executor = ThreadPoolExecutor(
                max_workers=2 * self.slots, thread_name_prefix=f"deepapps-reply-{name}"
            )
        else:
            self.worker = worker or ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"deepapps-decode-{name}"
            )
            self.consumers = self.worker
        self.created = int(time.time())

    def stream_reply(self, messages: Any, **options: Any) -> ChatStream:
        """Prepare a reply (on the worker): batched when this model has slots."""
        if self.batcher:
            return self.batcher.stream_reply(messages, **options)
        return self.chat.stream_reply(messages, **options)


def _batcher(chat: Chat, parallel: int) -> Any:
    """A continuous batcher for ``chat`` when ``parallel`` > 1 and its engine can batch."""
    from .batching import ContinuousBatcher, batching_unsupported, check_slots

    if check_slots(parallel) == 1:
        return None
    why = batching_unsupported(chat)
    if why:
        log.info("%s: one reply at a time (%s)", chat.model_name, why)
        return None
    return ContinuousBatcher(chat, parallel)


@dataclass
class ChatRequest:
    """One validated ``/v1/chat/completions`` request."""

    rid: str
    model: ServedModel
    messages: list[Any]
    options: dict[str, Any]
    stream: bool
    include_usage: bool
    created: int = field(default_factory=lambda: int(time.time()))
    released: bool = False


class ChatService:
    """The request logic behind :func:`create_app`: access checks, limits, admission, and
    preparing and decoding replies on each model's worker."""

    def __init__(
        self,
        served: dict[str, ServedModel],
        api_key: str | None,
        limits: ServerLimits,
        allowed_hosts: Iterable[str] | None = None,
    ) -> None:
        self.served = served
        self.lookup = {alias: m for m in served.values() for alias in (m.name, *m.aliases)}
        self._expected_auth = f"Bearer {api_key}".encode() if api_key else None
        self.limits = limits
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts) if allowed_hosts else None
        self.finished: deque = deque(maxlen=256)  # (request id, finish_reason, completion_tokens)
        self.in_flight = 0
        self.cancelled = 0

    # access and parsing ---------------------------------------------------------------
    def check_access(self, request: Request) -> None:
        """Loopback Host names only (when bound to loopback), then the API key if one is set."""
        if self.allowed_hosts is not None:
            host = _host_name(request.headers.get("host", ""))
            if host not in self.allowed_hosts:
                raise APIError(
                    400,
                    f"Host {_short(host)} is not served here: this server answers loopback names "
                    f"only ({', '.join(sorted(self.allowed_hosts))}).",
                    code="invalid_host",
                )
        if self._expected_auth is None:
            return
        given = request.headers.get("authorization", "").encode("latin-1")
        if not hmac.compare_digest(given, self._expected_auth):
            raise APIError(
                401,
                "Incorrect or missing API key: send 'Authorization: Bearer <key>'.",
                code="invalid_api_key",
            )

    async def read_json(self, request: Request) -> dict[str, Any]:
        """The body as a JSON object, within the size and nesting limits."""
        _check_content_type(request)
        raw = await _read_body(request, self.limits.max_body_bytes)
        body = _parse_json(raw, self.limits.max_json_depth)
        if not isinstance(body, dict):
            raise APIError(400, "The request body must be a JSON object.")
        return body

    def parse(self, body: dict[str, Any], rid: str) -> ChatRequest:
        """Validate a chat request (cheap checks only: the prompt is prepared on the worker)."""
        model_id = body.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise APIError(400, "you must provide a model parameter", param="model")
        if model_id not in self.lookup:
            raise _unknown_model(model_id, self.served)
        sm = self.lookup[model_id]
        if "messages" not in body:
            raise APIError(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        _check_messages(body["messages"], self.limits)
        _check_stop(body.get("stop"), self.limits)
        options = _options(body, sm.chat, self.limits)
        stream_flag = body.get("stream", False)
        if not isinstance(stream_flag, bool):
            raise APIError(400, "'stream' must be a boolean.", param="stream")
        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
        return ChatRequest(rid, sm, body["messages"], options, stream_flag, include_usage)

    # admission ---------------------------------------------------------------------------
    def admit(self, req: ChatRequest) -> None:
        """Count ``req`` in, or refuse it with 429. Runs on the event loop with no ``await``
        between the check and the count, so a burst cannot slip past the bound."""
        sm = req.model
        if sm.admitted >= sm.slots + self.limits.max_queue:  # every slot busy and the queue full
            raise APIError(
                429,
                f"The server is busy: {sm.admitted - sm.slots} requests are waiting for {sm.name} "
                f"(limit {self.limits.max_queue}); retry later.",
                "rate_limit_error",
                code="queue_full",
            )
        sm.admitted += 1
        self.in_flight += 1

    def release(self, req: ChatRequest) -> None:
        if not req.released:
            req.released = True
            req.model.admitted -= 1
            self.in_flight -= 1

    # the endpoint ------------------------------------------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        rid = "chatcmpl-" + uuid.uuid4().hex[:24]
        request.state.request_id = rid
        try:
            self.check_access(request)
            req = self.parse(await self.read_json(request), rid)
            self.admit(req)
        except APIError:
            raise
        except _ClientGone:
            return Response(status_code=499)
        except Exception as exc:
            raise _internal_error(rid, exc) from exc
        try:
            return await self._serve_admitted(request, req)
        except APIError:
            raise
        except Exception as exc:
            raise _internal_error(rid, exc) from exc

    async def _serve_admitted(self, request: Request, req: ChatRequest) -> Response:
        """Prepare on the worker, then answer as JSON or as a stream; the admission is released
        here unless a stream response takes it over."""
        watcher = asyncio.create_task(_wait_for_disconnect(request))
        handed_over = False
        try:
            stream = await self._prepare(req, watcher)
            if req.stream:
                await _stop_task(watcher)
                handed_over = True
                return _GuardedStream(
                    self._sse(req, stream),
                    on_close=lambda: self.release(req),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            return JSONResponse(await self._reply(req, stream, watcher))
        except _ClientGone:
            log.info("request %s: the client left before its reply", req.rid)
            return Response(status_code=499)
        finally:
            await _stop_task(watcher)
            if not handed_over:
                self.release(req)

    async def _prepare(self, req: ChatRequest, watcher: asyncio.Task) -> ChatStream:
        """Chat template, tokenising, trimming and retrieval, on the worker."""
        future = req.model.worker.submit(req.model.stream_reply, req.messages, **req.options)
        try:
            return await _result_unless_gone(future, watcher, cancel=lambda: None)
        except InputError as exc:
            raise _prepare_error(exc) from exc
        except _ClientGone:
            self._note_cancelled(req)
            raise

    async def _reply(self, req: ChatRequest, stream: ChatStream, watcher: asyncio.Task) -> dict[str, Any]:
        future = req.model.consumers.submit(_consume, stream)
        try:
            result: ChatResult = await _result_unless_gone(future, watcher, cancel=stream.cancel)
        except _ClientGone:
            self._note_cancelled(req, stream)
            raise
        self.finished.append((req.rid, result.finish_reason, result.completion_tokens))
        return _completion_body(req, result)

    def _note_cancelled(self, req: ChatRequest, stream: ChatStream | None = None) -> None:
        self.cancelled += 1
        done = stream.result.completion_tokens if stream is not None and stream.result else 0
        self.finished.append((req.rid, "cancelled", done))

    async def _sse(self, req: ChatRequest, stream: ChatStream):
        """Server-Sent Events for one reply; cancels generation if the client goes away."""
        import anyio

        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def pump() -> None:
            try:
                for piece in stream:
                    loop.call_soon_threadsafe(events.put_nowait, ("delta", piece))
                loop.call_soon_threadsafe(events.put_nowait, ("done", stream.result))
            except BaseException as exc:  # noqa: BLE001 - reported to the client
                loop.call_soon_threadsafe(events.put_nowait, ("error", exc))

        future = req.model.consumers.submit(pump)
        complete = False
        try:
            yield _chunk(req, {"role": "assistant", "content": ""}, None)
            while True:
                kind, value = await events.get()
                if kind == "delta":
                    yield _chunk(req, {"content": value}, None)
                    continue
                if kind == "done":
                    complete = True
                    self.finished.append((req.rid, value.finish_reason, value.completion_tokens))
                    for event in _final_events(req, value):
                        yield event
                else:
                    complete = True
                    err = _internal_error(req.rid, value)
                    yield f"data: {json.dumps(err.body())}\n\n"
                break
        finally:
            if not complete:
                stream.cancel()
                if not future.cancel():  # it started: wait until the worker lets go
                    with anyio.CancelScope(shield=True):
                        await asyncio.wait({asyncio.wrap_future(future)})
                self._note_cancelled(req, stream)

    # health ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "models": list(self.served),
            "in_flight": self.in_flight,
            "cancelled": self.cancelled,
            "slots": {m.name: _slot_use(m) for m in self.served.values()},
        }


def _slot_use(m: ServedModel) -> dict[str, int]:
    """Slots of a model and how many decode now (one at a time: ``admitted`` covers both)."""
    if m.batcher is None:
        return {"total": 1, "active": min(m.admitted, 1)}
    return {"total": m.slots, "active": m.batcher.active}


class _GuardedStream(StreamingResponse):
    """A streaming response that always closes its generator and runs ``on_close``, even when
    the client disconnects before the first chunk (so the admission is never leaked)."""

    def __init__(self, content, on_close, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        import anyio

        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()
            self._on_close()


def create_app(
    chats: Chat | dict[str, Chat],
    api_key: str | None = None,
    limits: ServerLimits | None = None,
    worker: Executor | None = None,
    allowed_hosts: Iterable[str] | None = None,
    parallel: int = 1,
):
    """A FastAPI app serving ``chats`` (one Chat, or ``{model id: Chat}``).

    ``api_key``: required bearer key (default: ``DEEPAPPS_API_KEY`` if set; empty is an error).
    ``limits``: :class:`ServerLimits`. ``worker``: where prompts are prepared and replies
    decoded (default: one thread per model; :func:`serve` passes a :class:`MainThreadExecutor`).
    ``allowed_hosts``: ``Host`` names answered (default: any; :func:`serve` on loopback passes
    the loopback names). ``parallel``: replies each model decodes together (continuous
    batching, transformers engine; 1 = one at a time)."""
    if isinstance(chats, Chat):
        chats = {chats.model_name: chats}
    served = {
        name: ServedModel(name, chat, _aliases(name), worker=worker, parallel=parallel)
        for name, chat in chats.items()
    }
    service = ChatService(served, resolve_api_key(api_key), limits or ServerLimits(), allowed_hosts)
    app = FastAPI(title="deepapps chat (OpenAI-compatible)", docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.served = served
    app.state.finished = service.finished
    _add_error_handlers(app)
    _add_routes(app, service)
    return app


def _add_error_handlers(app: FastAPI) -> None:
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
        rid = getattr(request.state, "request_id", None) or "req-" + uuid.uuid4().hex[:24]
        return JSONResponse(_internal_error(rid, exc).body(), status_code=500)


def _add_routes(app: FastAPI, service: ChatService) -> None:
    @app.get("/health")
    async def health():
        return service.health()

    @app.get("/v1/models")
    async def list_models(request: Request):
        service.check_access(request)
        return {"object": "list", "data": [_model_card(m) for m in service.served.values()]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str, request: Request):
        service.check_access(request)
        if model_id not in service.lookup:
            raise _unknown_model(model_id, service.served)
        return _model_card(service.lookup[model_id])

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await service.chat_completions(request)


# request checks ----------------------------------------------------------------------------
def resolve_api_key(api_key: str | None) -> str | None:
    """``api_key``, else ``DEEPAPPS_API_KEY``, else None; an empty or malformed key is an error
    (it would silently turn authentication off, or never match)."""
    source = "--api-key"
    if api_key is None:
        api_key = os.environ.get("DEEPAPPS_API_KEY")
        source = "DEEPAPPS_API_KEY"
        if api_key is None:
            return None
    if not api_key:
        leave_out = "unset it" if source == "DEEPAPPS_API_KEY" else "leave it out"
        raise InputError(
            f"{source} is empty, which would turn authentication off; give a key, "
            f"or {leave_out} to serve without one (loopback only)"
        )
    if not api_key.isascii() or not api_key.isprintable() or any(c.isspace() for c in api_key):
        raise InputError(f"{source} must be printable ASCII without spaces (it is sent in an HTTP header)")
    return api_key


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name in a ``Host`` header, without the port: ``[::1]:8000`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _check_content_type(request: Request) -> None:
    """JSON only: a web page can send ``text/plain`` to 127.0.0.1 without a CORS preflight."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise APIError(
            415,
            f"Content-Type must be application/json, got {_short(media or 'none')}.",
            code="unsupported_media_type",
        )


async def _read_body(request: Request, cap: int) -> bytes:
    """The body, read chunk by chunk; past ``cap`` bytes reading stops with 413."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(int(declared), cap)
    from starlette.requests import ClientDisconnect

    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise _too_large(size, cap)
            parts.append(chunk)
    except ClientDisconnect as exc:  # left halfway through the upload: nobody to answer
        raise _ClientGone from exc
    return b"".join(parts)


def _too_large(size: int, cap: int) -> APIError:
    return APIError(
        413,
        f"The request body is over {cap} bytes (at least {size}); send a shorter conversation.",
        code="request_too_large",
    )


def _parse_json(raw: bytes, max_depth: int) -> Any:
    """Strict JSON (no NaN/Infinity), at most ``max_depth`` levels of arrays and objects."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        body = json.loads(raw, parse_constant=no_constants)
    except RecursionError as exc:
        raise _too_deep(max_depth) from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, huge integers, bad UTF-8
        raise APIError(400, f"We could not parse the JSON body of your request ({exc}).") from exc
    if raw.count(b"[") + raw.count(b"{") > max_depth and _deeper_than(body, max_depth):
        raise _too_deep(max_depth)
    return body


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays/objects nest more than ``limit`` levels (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _too_deep(limit: int) -> APIError:
    return APIError(400, f"The JSON body nests deeper than {limit} levels; a chat request needs 5.")


def _check_messages(messages: Any, limits: ServerLimits) -> None:
    if not isinstance(messages, list) or not messages:
        raise APIError(
            400, "'messages' must be a non-empty array of {role, content} objects.", param="messages"
        )
    if len(messages) > limits.max_messages:
        raise APIError(
            400,
            f"'messages' holds {len(messages)} messages; this server accepts at most "
            f"{limits.max_messages}. Send the recent ones (older turns are dropped anyway when the "
            "context window is full).",
            param="messages",
            code="too_many_messages",
        )
    for i, m in enumerate(messages):
        texts = _content_texts(m.get("content")) if isinstance(m, dict) else []
        n = sum(len(t) for t in texts)
        if n > limits.max_message_chars:
            raise APIError(
                400,
                f"messages[{i}].content is {n} characters; the limit is {limits.max_message_chars}.",
                param="messages",
                code="message_too_long",
            )
        if not all(_is_unicode(t) for t in texts):
            raise APIError(
                400,
                f"messages[{i}].content is not valid Unicode (a lone surrogate escape such as \\ud800).",
                param="messages",
            )


def _content_texts(content: Any) -> list[str]:
    """The strings in a message's content: a string, or the ``text`` of its parts."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def _is_unicode(text: str) -> bool:
    """False for strings holding lone surrogates (valid JSON escapes, but no tokenizer takes them)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_stop(stop: Any, limits: ServerLimits) -> None:
    if stop is None:
        return
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
        raise APIError(400, "'stop' must be a non-empty string or an array of them.", param="stop")
    if len(items) > limits.max_stop:
        raise APIError(400, f"'stop' may hold at most {limits.max_stop} sequences.", param="stop")
    longest = max(len(s) for s in items)
    if longest > limits.max_stop_chars:
        raise APIError(
            400,
            f"A stop sequence is {longest} characters; the limit is {limits.max_stop_chars}.",
            param="stop",
        )


def _options(body: dict[str, Any], chat: Chat, limits: ServerLimits) -> dict[str, Any]:
    options: dict[str, Any] = {}
    max_tokens = _max_tokens(body, chat, limits)
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    elif limits.max_tokens is not None:
        options["max_tokens"] = min(chat.defaults.max_tokens, limits.max_tokens)
    n = body.get("n", 1)
    if n not in (1, None):
        raise APIError(400, "Only n=1 is supported.", param="n")
    for key in SAMPLING_FIELDS:
        if body.get(key) is not None:
            options[key] = body[key]
    for key in ("temperature", "top_p"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise APIError(400, f"'{key}' must be a number, got {_short(value)}.", param=key)
    seed = options.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise APIError(400, "'seed' must fit in 64 bits.", param="seed")
    try:  # validate ranges here so the error names its parameter
        chat._params(dict(options))
    except InputError as exc:  # "option --top-p: ..." names the request's top_p
        param = str(exc).removeprefix("option --").split(":", 1)[0].split(" ", 1)[0].replace("-", "_")
        raise APIError(400, str(exc), param=param if param in body else None) from exc
    return options


def _max_tokens(body: dict[str, Any], chat: Chat, limits: ServerLimits) -> int | None:
    limit = min(limits.max_tokens or chat.context_window, chat.context_window)
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise APIError(400, f"'{key}' must be an integer, got {_short(value)}.", param=key)
        if value < 1:
            raise APIError(400, f"'{key}' must be at least 1, got {value}.", param=key, code="invalid_value")
        if value > limit:
            raise APIError(
                400,
                f"'{key}' is {_short(value)}, but this model's context window is {chat.context_window} "
                f"tokens (limit {limit}); lower it.",
                param=key,
                code="invalid_value",
            )
        return value
    return None


def _short(value: Any) -> str:
    """A bounded repr for error messages (never echo a megabyte back)."""
    return reprlib.repr(value)


# errors ------------------------------------------------------------------------------------
def _unknown_model(model_id: str, served: dict[str, ServedModel]) -> APIError:
    return APIError(
        404,
        f"The model {_short(model_id)} does not exist on this server. Available: {', '.join(served)}.",
        param="model",
        code="model_not_found",
    )


def _prepare_error(exc: InputError) -> APIError:
    text = str(exc)
    if "context window" in text:
        return APIError(400, text, param="messages", code="context_length_exceeded")
    return APIError(400, text, param="messages" if "message" in text else None)


def _internal_error(rid: str, exc: BaseException) -> APIError:
    """Log ``exc`` with its traceback; the client gets only the request id."""
    log.error("request %s failed", rid, exc_info=(type(exc), exc, exc.__traceback__))
    return APIError(
        500, f"Internal error (request id {rid}); the server log has the details.", "server_error"
    )


# workers and disconnects -------------------------------------------------------------------
async def _wait_for_disconnect(request: Request) -> None:
    """Return when the client goes away (the body has been read, so only that can arrive)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _stop_task(task: asyncio.Task) -> None:
    if not task.done():
        task.cancel()
    await asyncio.wait({task})


async def _result_unless_gone(future: Future, watcher: asyncio.Task, cancel) -> Any:
    """The worker job's result; if the client leaves first, drop the job if it has not started
    (else ``cancel()`` it: it stops at the next token), wait until the worker lets go, and
    raise :class:`_ClientGone`."""
    waiting = asyncio.wrap_future(future)
    await asyncio.wait({waiting, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if waiting.done():
        return waiting.result()
    if not future.cancel():
        cancel()
    await asyncio.wait({waiting})
    raise _ClientGone


def _consume(stream: ChatStream) -> ChatResult:
    for _ in stream:
        pass
    assert stream.result is not None
    return stream.result


# response bodies ---------------------------------------------------------------------------
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
        "engine": m.chat.engine,  # transformers | llama.cpp: what decodes this model
    }


def _completion_body(req: ChatRequest, result: ChatResult) -> dict[str, Any]:
    return {
        "id": req.rid,
        "object": "chat.completion",
        "created": req.created,
        "model": req.model.name,
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
        "deepapps": {
            "citations": result.citations,
            "trimmed_messages": result.trimmed_messages,
            "time_to_first_token_ms": result.time_to_first_token_ms,
            "engine": result.engine,
        },
    }


def _usage(result: ChatResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.total_tokens,
    }


def _chunk(req: ChatRequest, delta: dict[str, Any], finish: str | None) -> str:
    obj = {
        "id": req.rid,
        "object": "chat.completion.chunk",
        "created": req.created,
        "model": req.model.name,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return f"data: {json.dumps(obj)}\n\n"


def _final_events(req: ChatRequest, result: ChatResult) -> list[str]:
    events = [_chunk(req, {}, result.finish_reason)]
    if req.include_usage:
        usage = {
            "id": req.rid,
            "object": "chat.completion.chunk",
            "created": req.created,
            "model": req.model.name,
            "choices": [],
            "usage": _usage(result),
        }
        events.append(f"data: {json.dumps(usage)}\n\n")
    events.append("data: [DONE]\n\n")
    return events


# the command ---------------------------------------------------------------------------------
def check_bind(host: str, api_key: str | None, insecure: bool) -> list[str] | None:
    """Refuse a non-loopback address without a key unless ``insecure``; return the Host names
    to answer (the loopback names when bound to loopback, else None: any)."""
    if is_loopback(host):
        return [*LOOPBACK_NAMES, host.strip("[]").lower()]
    if api_key:
        return None
    if not insecure:
        raise InputError(
            f"binding {host} without an API key would let anyone on the network use the model; "
            "set --api-key (or DEEPAPPS_API_KEY), bind 127.0.0.1, or pass --insecure if you mean it"
        )
    log.warning("serving on %s without an API key (--insecure): anyone who can reach it can use it", host)
    return None


def serve(
    chats: Chat | dict[str, Chat],
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    limits: ServerLimits | None = None,
    insecure: bool = False,
    log_level: str = "info",
    parallel: int = 1,
    stop: threading.Event | None = None,
) -> None:
    """Run the server until interrupted (Ctrl-C) or until ``stop`` is set (from another thread):
    HTTP on a background thread, preparing and decoding on this thread (with ``parallel`` > 1:
    the continuous batcher's loop runs here)."""
    import uvicorn

    api_key = resolve_api_key(api_key)
    allowed_hosts = check_bind(host, api_key, insecure)
    worker = MainThreadExecutor()
    app = create_app(
        chats, api_key=api_key, limits=limits, worker=worker, allowed_hosts=allowed_hosts, parallel=parallel
    )
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))
    batchers = [m.batcher for m in app.state.served.values() if m.batcher is not None]
    main_loop = worker.run
    if batchers and len(batchers) == len(app.state.served):  # nothing left for the MainThreadExecutor
        batchers[0].claim()
        main_loop = batchers[0].run

    def run_http() -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits this way when it cannot bind
            server.run()

    http = threading.Thread(target=run_http, name="deepapps-http", daemon=True)
    http.start()
    try:
        main_loop(keep_going=lambda: http.is_alive() and not (stop is not None and stop.is_set()))
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        worker.shutdown()
        for batcher in batchers:
            batcher.shutdown(wait=False)
        http.join(timeout=10)
    if not server.started:
        from deepapps.errors import DeepAppsError

        raise DeepAppsError(
            f"the server could not start on {host}:{port} (see the message above); "
            "is another process using that port? Try --port with a free one"
        )
