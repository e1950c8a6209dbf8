"""Continuous batching for concurrent chat streams: the idea behind llama.cpp's ``--parallel``
slots and vLLM's continuous batching, for Hugging Face causal LMs.

    from deepapps_nlp import Chat
    from deepapps_nlp.batching import ContinuousBatcher

    chat = Chat(engine="transformers", temperature=0)
    with ContinuousBatcher(chat, slots=8) as batcher:
        results = batcher.replies(["What is 2 + 3?", "Name a colour."])   # decoded together
        stream = batcher.stream_reply("Why is the sky blue?")             # a ChatStream
        for piece in stream: ...

Each request gets a *slot*: a row of one batched KV cache, with its own sampling settings
(temperature, top-p, repetition penalty, seed), stop strings, ``min_tokens`` and ``max_tokens``.
The decode loop runs one forward pass per step over every active slot. A request that arrives
while others decode waits (first come, first served) for a free slot, is prefilled alone, and
joins the batch at the next step; a stream that ends (end token, ``max_tokens``, a stop string,
``cancel()``, or its reader closing it) leaves the batch at once and frees its slot.

The batch is kept right-aligned ("left padding"): every row's newest token sits in the same
cache column, an attention mask hides each row's padding, and position ids carry each row's
own positions, so each row computes what it would compute alone. Greedy replies are identical
to decoding each request alone (``tests/nlp/test_batching.py`` decodes prompts of different
lengths together and compares; exact in fp32, while in bf16 a batch may round differently).
The per-row choice of the next token is the same code as
:meth:`Chat.decode <deepapps_nlp.chat.Chat.decode>` (repetition penalty, temperature, top-p,
a per-reply seeded generator).

The loop runs on its own thread (started on first use), or on a thread you give it with
:meth:`~ContinuousBatcher.claim` then :meth:`~ContinuousBatcher.run` (``deepapps chat serve`` runs it on the main thread, where
torch's OpenMP workers are fastest). A batcher is also an ``Executor``: jobs given to
:meth:`~ContinuousBatcher.submit` run on the loop's thread between two decoding steps (the
server prepares prompts there). Only models whose KV cache is the plain full-attention one
(Llama, Qwen, SmolLM, ...) can be batched: :func:`batching_unsupported` says why not.
"""

from __future__ import annotations

import collections
import functools
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from deepapps import InputError

from .chat import Chat, ChatResult, ChatStream, _TextDeltas, text_pieces
from .engines.hf import logits_processors, pick_token, seeded_generator

DEFAULT_SLOTS = 4  # deepapps chat serve --parallel: 4 streams decode together by default
MAX_SLOTS = 256
HEADROOM = 64  # cache columns allocated ahead, so most steps write in place
_END = object()  # end of a slot's token queue


class _Failed:
    """The decode loop failed for this slot: the reader re-raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def batching_unsupported(chat: Chat) -> str | None:
    """Why ``chat`` cannot be decoded in a batch (None if it can).

    Batching needs a transformers causal LM whose KV cache is the plain full-attention one
    (every layer a ``DynamicLayer``): sliding-window, linear-attention and other engines
    (e.g. llama.cpp) keep their one-at-a-time queue."""
    engine = getattr(chat, "engine", None)
    engine_name = engine if isinstance(engine, str) or engine is None else getattr(engine, "name", None)
    if engine_name not in (None, "transformers"):
        return f"the {engine_name} engine decodes one request at a time"
    model = getattr(getattr(chat, "loaded", None), "model", None)
    if model is None or not hasattr(model, "config"):
        return "the model is not a transformers causal LM"
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer

        layers = DynamicCache(config=model.config).layers
    except Exception as exc:  # noqa: BLE001 - any failure means: not batchable
        return f"its KV cache cannot be built ({type(exc).__name__})"
    odd = {type(layer).__name__ for layer in layers if type(layer) is not DynamicLayer}
    if odd:
        return f"its KV cache has {', '.join(sorted(odd))} layers (only full attention is batched)"
    return None


def check_slots(slots: Any) -> int:
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= MAX_SLOTS:
        raise InputError(f"--parallel (slots) must be an integer from 1 to {MAX_SLOTS}, got {slots!r}")
    return slots


# the batched KV cache ----------------------------------------------------------------------
@functools.cache
def _slot_layer_class() -> type:
    """A full-attention cache layer over a preallocated buffer: a decoding step writes its
    column in place instead of concatenating the whole cache (as ``DynamicLayer`` does)."""
    import torch
    from transformers.cache_utils import DynamicLayer

    class SlotLayer(DynamicLayer):
        def __init__(self, keys: Any, values: Any, used: int) -> None:
            super().__init__()
            self.buf_k, self.buf_v, self.used = keys, values, used
            self.device = keys.device
            self.is_initialized = True
            self._views()

        def _views(self) -> None:
            self.keys = self.buf_k[:, :, : self.used]
            self.values = self.buf_v[:, :, : self.used]

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            end = self.used + key_states.shape[-2]
            if end > self.buf_k.shape[-2]:
                grow = end + HEADROOM - self.buf_k.shape[-2]
                pad = (0, 0, 0, grow)
                self.buf_k = torch.nn.functional.pad(self.buf_k, pad)
                self.buf_v = torch.nn.functional.pad(self.buf_v, pad)
            self.buf_k[:, :, self.used : end] = key_states
            self.buf_v[:, :, self.used : end] = value_states
            self.used = end
            self._views()
            return self.keys, self.values

    return SlotLayer


def _right_aligned(parts: Sequence[Any], width: int) -> Any:
    """Rows ``[1, heads, length_i, dim]`` stacked into ``[n, heads, width + HEADROOM, dim]``,
    each ending at column ``width``; the columns before a row's start are zeros (masked)."""
    import torch

    first = parts[0]
    heads, dim = first.shape[1], first.shape[3]
    out = torch.zeros((len(parts), heads, width + HEADROOM, dim), dtype=first.dtype, device=first.device)
    for i, part in enumerate(parts):
        out[i, :, width - part.shape[2] : width] = part[0]
    return out


class _Batch:
    """The active slots as rows of one right-aligned KV cache (``rows[i]`` is row ``i``)."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.rows: list[_Slot] = []
        self.cache: Any = None
        self.width = 0  # cache columns in use (the longest row)

    def rebuild(self, rows: list[_Slot], joining: dict[int, Any] | None = None) -> None:
        """Lay out ``rows`` again: the kept rows of the current cache plus ``joining``
        ({id(slot): its prefilled single-row cache}), right-aligned, trimmed to the longest."""
        from transformers.cache_utils import Cache

        joining = joining or {}
        if not rows:
            self.rows, self.cache, self.width = [], None, 0
            return
        index = {id(s): i for i, s in enumerate(self.rows)}
        width = max(s.length for s in rows)
        layer_class = _slot_layer_class()
        n_layers = len(next(iter(joining.values())).layers) if joining else len(self.cache.layers)
        layers = []
        for li in range(n_layers):
            keys, values = [], []
            for s in rows:
                if id(s) in joining:
                    src = joining[id(s)].layers[li]
                    keys.append(src.keys)
                    values.append(src.values)
                else:
                    src, i = self.cache.layers[li], index[id(s)]
                    keys.append(src.keys[i : i + 1, :, self.width - s.length : self.width])
                    values.append(src.values[i : i + 1, :, self.width - s.length : self.width])
            layers.append(layer_class(_right_aligned(keys, width), _right_aligned(values, width), width))
        self.rows, self.cache, self.width = list(rows), Cache(layers=layers), width

    def step(self) -> Any:
        """One forward pass over every row's pending token; the next-token logits ``[rows, vocab]``."""
        import torch

        lm = self.lm
        device = lm.device
        ids = torch.cat([s.next_id for s in self.rows], dim=0)
        lengths = torch.tensor([s.length for s in self.rows], device=device).unsqueeze(1)
        columns = torch.arange(self.width + 1, device=device).unsqueeze(0)
        mask = (columns >= self.width - lengths).to(torch.long)  # a row's padding is 0
        cache_kw = lm.forward_args["cache"]
        out = lm.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=lengths,
            use_cache=True,
            **{cache_kw: self.cache},
        )
        self.width += 1
        for s in self.rows:
            s.length += 1
        return out.logits[:, -1, :]


# one request ---------------------------------------------------------------------------------
@dataclass(eq=False)
class _Slot:
    """A request being decoded: its sampling state, stop conditions and place in the batch."""

    stream: BatchedChatStream
    max_new: int
    min_new: int
    eos: list[int]
    greedy: bool
    processors: Any
    generator: Any
    seq: Any  # prompt + chosen ids ([1, n]); kept only when a processor needs the history
    length: int  # tokens in this row's cache
    produced: int = 0
    next_id: Any = None  # the chosen token, fed at the next step
    finished: bool = False

    @classmethod
    def for_stream(cls, stream: BatchedChatStream, eos: list[int], device: str) -> _Slot:
        import torch

        prep = stream.prepared
        p = prep["params"]
        processors = logits_processors(p)
        seq = torch.tensor([prep["input_ids"]], dtype=torch.long, device=device) if processors else None
        return cls(
            stream=stream,
            max_new=prep["max_new"],
            min_new=min(p.min_tokens, prep["max_new"]),
            eos=eos,
            greedy=p.greedy,
            processors=processors,
            generator=None if p.greedy else seeded_generator(p.seed, device),
            seq=seq,
            length=len(prep["input_ids"]),
        )

    def choose(self, logits: Any) -> int:
        """Pick the next token from this row's logits ``[1, vocab]`` exactly as ``Chat.decode``
        does, hand it to the reader, and note whether the reply is complete."""
        import torch

        logits = logits.to(dtype=torch.float32)
        if self.produced < self.min_new and self.eos:
            logits[:, self.eos] = float("-inf")
        if self.processors:
            logits = self.processors(self.seq, logits)
        nxt = pick_token(logits, self.greedy, self.generator)
        token = int(nxt)
        self.produced += 1
        self.stream._tokens.put(token)
        if token in self.eos or self.produced >= self.max_new:
            self.finished = True
        else:
            if self.processors:
                self.seq = torch.cat([self.seq, nxt], dim=1)
            self.next_id = nxt
        return token

    @property
    def leaving(self) -> bool:
        return self.finished or self.stream.cancelled or self.stream._left.is_set()


class BatchedChatStream(ChatStream):
    """A :class:`~deepapps_nlp.chat.ChatStream` decoded by a :class:`ContinuousBatcher`.

    Iterating joins the batcher's queue and reads this reply's tokens as the decode loop
    produces them (text deltas, stop strings and the result are the ChatStream's own).
    ``cancel()`` or closing the iterator frees the slot at the next step."""

    def __init__(self, chat: Chat, prepared: dict[str, Any], batcher: ContinuousBatcher) -> None:
        super().__init__(chat, prepared)
        self.batcher = batcher
        self._tokens: queue.SimpleQueue = queue.SimpleQueue()
        self._left = threading.Event()  # the reader stopped reading (stop string, closed)
        self.t_joined: float | None = None

    def cancel(self) -> None:
        super().cancel()
        self.batcher._wake()

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise RuntimeError("a ChatStream can be iterated only once; read .result or start a new reply")
        self._started = True
        deltas = _TextDeltas(self.chat.loaded.detokenize, self.prepared["params"].stop)
        self._deltas = deltas
        timing: dict[str, float] = {}
        t_gen = self.t_joined = time.perf_counter()
        self.batcher._join(self)
        try:
            yield from text_pieces(deltas, self._token_ids(), timing)
            t_end = time.perf_counter()
        finally:
            self._left.set()
            self.batcher._wake()
        self._complete(deltas, timing.get("first"), t_gen, t_end)

    def _token_ids(self) -> Iterator[int]:
        while True:
            item = self._tokens.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item


# the scheduler -----------------------------------------------------------------------------
class ContinuousBatcher(Executor):
    """Decode many replies of one chat model together, each in its own slot.

    ``slots``: most replies decoded at once; more wait in arrival order. ``own_thread``: start
    a decode thread on first use (False: someone calls :meth:`run`). Use it as a context manager,
    or call :meth:`shutdown`, to stop the thread."""

    def __init__(self, chat: Chat, slots: int = DEFAULT_SLOTS, *, own_thread: bool = True) -> None:
        why = batching_unsupported(chat)
        if why:
            raise InputError(f"cannot batch {chat.model_name}: {why}; serve it with --parallel 1")
        self.chat = chat
        self.slots = check_slots(slots)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()  # ("job", ...) and ("join", stream)
        self._waiting: collections.deque[BatchedChatStream] = collections.deque()
        self._batch = _Batch(chat.loaded)
        self._eos = chat.eos_ids()
        self._own_thread = own_thread
        self._thread: threading.Thread | None = None
        self._closed = False
        self._start_lock = threading.Lock()
        self._looping = False
        self.steps = 0  # batched forward passes so far
        self.peak_active = 0  # most replies decoded together so far
        self.late_joins = 0  # replies that joined while others were decoding

    # public API ------------------------------------------------------------------------
    @property
    def active(self) -> int:
        """Replies being decoded now."""
        return len(self._batch.rows)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def stream_reply(self, messages: Any, **options: Any) -> BatchedChatStream:
        """Prepare a reply (options checked like :meth:`Chat.stream_reply`) to be decoded in the
        batch: iterate it for text deltas (from any thread), then read ``.result``."""
        return self.stream_prepared(self.chat.prepare(messages, **options))

    def stream_prepared(self, prep: dict[str, Any]) -> BatchedChatStream:
        """A batched stream for a prompt prepared by :meth:`Chat.prepare`."""
        prep["t_prepared"] = time.perf_counter()
        return BatchedChatStream(self.chat, prep, self)

    def replies(self, requests: Sequence[Any], **options: Any) -> list[ChatResult]:
        """Answer every request (a message string or message list) concurrently; results in order."""
        streams = [self.stream_reply(r, **options) for r in requests]
        readers = [threading.Thread(target=_drain, args=(s,), daemon=True) for s in streams]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        failed = [s for s in streams if s.result is None]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(streams)} replies failed; see the log")
        return [s.result for s in streams]  # type: ignore[misc]

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn`` on the decode loop's thread between two steps (the server prepares there)."""
        if self._closed:
            raise RuntimeError("the batcher is shut down")
        future: Future = Future()
        self._inbox.put(("job", (future, fn, args, kwargs)))
        self._ensure_thread()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the loop; replies still decoding or waiting end as cancelled."""
        self._closed = True
        self._wake()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def __enter__(self) -> ContinuousBatcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def claim(self) -> None:
        """Promise to call :meth:`run` on a thread of one's own (no decode thread is started)."""
        with self._start_lock:
            if self._thread is not None:
                raise RuntimeError("the batcher already decodes on its own thread")
            self._own_thread = False

    def run(self, keep_going: Callable[[], bool] = lambda: True) -> None:
        """The decode loop, on the calling thread, until ``keep_going()`` turns false (checked at
        least every 0.2 s) or :meth:`shutdown`. One loop per batcher: it owns the KV cache."""
        with self._start_lock:
            if self._looping:
                raise RuntimeError("this batcher's decode loop is already running")
            self._looping = True
        try:
            while keep_going() and not self._closed:
                self._take_inbox(block=not self._batch.rows and not self._waiting)
                self._admit()
                if self._batch.rows:
                    self._step()
        finally:
            self._closed = True
            self._end_all()

    # internals ---------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if not self._own_thread or self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self.run, name=f"deepapps-batch-{self.chat.model_name}", daemon=True
                )
                self._thread.start()

    def _join(self, stream: BatchedChatStream) -> None:
        if self._closed:
            raise RuntimeError("the batcher is shut down")
        self._inbox.put(("join", stream))
        self._ensure_thread()

    def _wake(self) -> None:
        self._inbox.put(("wake", None))

    def _take_inbox(self, block: bool) -> None:
        """Queue the joiners and run the jobs that arrived (waiting up to 0.2 s if idle)."""
        while True:
            try:
                kind, value = self._inbox.get(timeout=0.2) if block else self._inbox.get_nowait()
            except queue.Empty:
                return
            block = False
            if kind == "join":
                self._waiting.append(value)
            elif kind == "job":
                run_job(*value)

    def _admit(self) -> None:
        """Prefill waiting requests (alone, in arrival order) into free slots; they join the batch."""
        self._release_leaving()
        joining: dict[int, Any] = {}
        rows = list(self._batch.rows)
        running = bool(rows)
        while self._waiting and len(rows) < self.slots:
            stream = self._waiting.popleft()
            if stream.cancelled or stream._left.is_set():
                stream._tokens.put(_END)
                continue
            slot = _Slot.for_stream(stream, self._eos, self.chat.loaded.device)
            try:
                cache = self._prefill(slot)
            except Exception as exc:  # noqa: BLE001 - handed to this reply's reader
                stream._tokens.put(_Failed(exc))
                continue
            if slot.finished:
                stream._tokens.put(_END)
                continue
            joining[id(slot)] = cache
            rows.append(slot)
            self.late_joins += running
        if joining or len(rows) != len(self._batch.rows):
            self._batch.rebuild(rows, joining)
            self.peak_active = max(self.peak_active, len(rows))

    def _prefill(self, slot: _Slot) -> Any:
        """The prompt pass of one request alone (as ``Chat.decode`` does it); picks its first token."""
        import torch

        lm = self.chat.loaded
        ids = torch.tensor([slot.stream.prepared["input_ids"]], dtype=torch.long, device=lm.device)
        with lm.lock, torch.inference_mode():
            out = lm.model(input_ids=ids, use_cache=True, **lm.forward_args["prompt"])
            slot.choose(out.logits[:, -1, :])
        return out[lm.forward_args["cache"]]

    def _step(self) -> None:
        """One batched forward pass; every row picks its token; rows that ended leave."""
        import torch

        batch = self._batch
        if any(s.leaving for s in batch.rows):
            self._release_leaving()
            if not batch.rows:
                return
        try:
            with self.chat.loaded.lock, torch.inference_mode():
                logits = batch.step()
                for i, slot in enumerate(batch.rows):
                    slot.choose(logits[i : i + 1])
        except Exception as exc:  # noqa: BLE001 - every reader of this batch gets it
            for slot in batch.rows:
                slot.stream._tokens.put(_Failed(exc))
            batch.rebuild([])
            return
        self.steps += 1
        self._release_leaving()

    def _release_leaving(self) -> None:
        batch = self._batch
        leaving = [s for s in batch.rows if s.leaving]
        if not leaving:
            return
        for slot in leaving:
            slot.stream._tokens.put(_END)
        batch.rebuild([s for s in batch.rows if not s.leaving])

    def _end_all(self) -> None:
        """Shutting down: every reply still decoding or waiting ends as cancelled."""
        streams = [s.stream for s in self._batch.rows] + list(self._waiting)
        self._waiting.clear()
        while True:
            try:
                kind, value = self._inbox.get_nowait()
            except queue.Empty:
                break
            if kind == "join":
                streams.append(value)
            elif kind == "job":
                value[0].cancel()
        for stream in streams:
            stream._cancel.set()
            stream._tokens.put(_END)
        self._batch.rebuild([])


def run_job(future: Future, fn: Callable, args: tuple, kwargs: dict) -> None:
    """Run one submitted job on this thread and settle its future. A Ctrl-C (or SystemExit) while
    it runs fails the job with "shutting down" and is raised on, so that the loop calling this (the
    server's main thread) stops instead of handing the interrupt to a request and running on."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        future.set_exception(RuntimeError("the server is shutting down"))
        raise
    except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
        future.set_exception(exc)
    else:  # outside the try: a Ctrl-C landing here must not touch the finished future
        future.set_result(result)


def _drain(stream: ChatStream) -> None:
    for _ in stream:
        pass


# benchmark -----------------------------------------------------------------------------------
BENCH_PROMPTS = (  # different lengths, as concurrent users send them
    "Write a short paragraph about the ocean.",
    "What is 2 + 3?",
    "Name three colours.",
    "Explain in detail how photosynthesis works in plants, including the light and dark reactions, "
    "and why it matters for life on Earth.",
    "Hi",
    "Write a haiku about autumn leaves falling in a quiet park.",
    "What is the capital of France? Answer in one sentence.",
    "Give me a Python function that reverses a string, with a docstring and an example call.",
)


def bench_streams(chat: Chat, streams: int, max_tokens: int) -> dict[str, Any]:
    """``streams`` requests answered one at a time (the Chat API, in turn) against the same
    requests arriving together and decoded by a batcher with ``streams`` slots whose loop runs on
    this thread; greedy, exactly ``max_tokens`` new tokens each. Aggregate tokens/s of both,
    time to first token of each batched reply (from its arrival), and whether every batched
    reply equals its one-at-a-time reply."""
    prompts = [BENCH_PROMPTS[i % len(BENCH_PROMPTS)] for i in range(streams)]
    params = {"temperature": 0, "max_tokens": max_tokens, "min_tokens": max_tokens}
    chat(prompts[0], temperature=0, max_tokens=2)  # warm-up
    t0 = time.perf_counter()
    alone = [chat.run_one(p, **params) for p in prompts]
    single_s = time.perf_counter() - t0
    _decode_together(chat, prompts[:2], {**params, "max_tokens": 2, "min_tokens": 2})  # warm-up
    t0 = time.perf_counter()
    together = _decode_together(chat, prompts, params)
    batched_s = time.perf_counter() - t0
    tokens = sum(r.completion_tokens for r in together)
    ttft = sorted(r.time_to_first_token_ms or 0.0 for r in together)
    return {
        "streams": streams,
        "single_tokens_per_s": sum(r.completion_tokens for r in alone) / single_s,
        "batched_tokens_per_s": tokens / batched_s,
        "ttft_ms": ttft,
        "ttft_p95_ms": _percentile(ttft, 95),
        "single_ttft_ms": [r.time_to_first_token_ms for r in alone],
        "identical": all(a.text == b.text for a, b in zip(alone, together, strict=True)),
    }


def _decode_together(chat: Chat, prompts: Sequence[str], params: dict[str, Any]) -> list[ChatResult]:
    batcher = ContinuousBatcher(chat, slots=len(prompts), own_thread=False)
    streams = [batcher.stream_reply(p, **params) for p in prompts]
    readers = [threading.Thread(target=_drain, args=(s,), daemon=True) for s in streams]
    for t in readers:
        t.start()
    batcher.run(keep_going=lambda: any(t.is_alive() for t in readers))
    if any(s.result is None for s in streams):
        raise RuntimeError("a batched benchmark reply failed")
    return [s.result for s in streams]  # type: ignore[misc]


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (for 8 values, p95 is the largest)."""
    import math

    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def add_stream_figures(report: Any, chat: Chat, streams: int, max_tokens: int) -> dict[str, Any]:
    """``deepapps bench chat``'s continuous-batching figures (``batched_speedup_8_streams``...);
    returns the raw measurements for the report's setup."""
    m = bench_streams(chat, streams, max_tokens)
    how = f"{streams} requests (prompts of different lengths), greedy, exactly {max_tokens} new tokens each"
    report.add(
        "single_stream_tokens_per_s",
        round(m["single_tokens_per_s"], 2),
        "tokens/s",
        measured=f"the same requests one at a time through the Chat API: all new tokens / wall time; {how}",
    )
    report.add(
        f"batched_tokens_per_s_{streams}_streams",
        round(m["batched_tokens_per_s"], 2),
        "tokens/s",
        measured=f"all requests arriving together, decoded by continuous batching with {streams} slots: "
        "all new tokens / wall time from arrival to the last token",
    )
    report.add(
        f"batched_speedup_{streams}_streams",
        round(m["batched_tokens_per_s"] / m["single_tokens_per_s"], 2),
        "ratio",
        measured="aggregate tokens/s with the streams decoded together over one stream at a time",
        target=">= 3" if streams == 8 else None,
    )
    report.add(
        f"batched_ttft_p95_ms_{streams}_streams",
        round(m["ttft_p95_ms"], 1),
        "ms",
        measured="95th percentile (nearest rank) of the time from a request's arrival to its first text "
        "delta, all requests arriving at once (prompts are prefilled one after another)",
    )
    report.add(
        f"batched_greedy_identical_{streams}_streams",
        int(m["identical"]),
        "bool",
        measured="1 when every batched reply equals the same request's one-at-a-time reply",
        target="1",
    )
    return m
