"""The ``Chat`` API: messages in, streamed text out, with presets, sampling controls,
stop strings, seeds, history trimming, retrieval and token counts.

    from deepapps_nlp import Chat
    chat = Chat(preset="tutoring")                      # default model: smollm2-135m-instruct
    for piece in chat.stream_reply("Why is the sky blue?"):
        print(piece, end="", flush=True)
    result = chat("What is 2 + 3?", temperature=0)      # a ChatResult

Every option is one of the chat task's declared options (``deepapps options chat``): the core
checks names, types and ranges the same way for ``Chat(...)``, ``deepapps.load("chat", ...)``,
each call, the CLI, the server and the UI. Load-time options (``docs``, ``retriever``,
``doc_chunks``, ``chunk_words``, ``chunk_overlap``, ``context_window``) configure a Chat;
call-time ones (sampling, ``preset``, ``system``) given to the constructor become its defaults.

History policy (when ``prompt + max_tokens`` exceeds the context window): system messages
and the last message are always kept; the oldest other messages are dropped first, one at a
time, until the prompt plus ``max_tokens`` fits. If the kept messages alone still leave no
room, the prompt is refused with an :class:`~deepapps.InputError` when it does not fit at all,
else ``max_tokens`` is lowered to the room left (the result says so in ``max_tokens_used``).

The same class serves the CLI, the OpenAI-compatible server, the UI page, evaluation and
benchmarks, and code generation (``Chat.complete_prompt`` takes a raw prompt string without
the chat template).

Engines (the ``engine`` load option, :mod:`deepapps_nlp.engines`): ``llama.cpp`` runs a GGUF as
shipped through llama-cpp-python, ``transformers`` any Hugging Face causal LM; ``auto`` picks
llama.cpp for a GGUF when it is installed. Everything above is done here, the same for both;
the engine renders the template, tokenises and decodes (``Chat.engine`` and each result say which).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepapps import InputError, ModelRef, ModelSpec, Result, Runner
from deepapps.results import private
from deepapps.runtime.offline import apply_offline_policy

# the decoding helpers moved to the transformers engine; their old names stay importable here
from .engines.hf import logits_processors as _logits_processors  # noqa: F401
from .engines.hf import pick_token as _pick  # noqa: F401
from .engines.hf import seeded_generator as _generator  # noqa: F401
from .plugin import (
    CHUNK_OVERLAP,
    CHUNK_WORDS,
    DOC_CHUNKS,
    ENGINE,
    MAX_TOKENS,
    MIN_TOKENS,
    REPETITION_PENALTY,
    RETRIEVER,
    TEMPERATURE,
    TOP_P,
    check_run_options,
)
from .presets import PRESETS

apply_offline_policy()  # before transformers is imported: a hub id fails at once, not after ~46 s

TASK = "chat"
GREEDY_BELOW = 1e-5  # temperatures below this decode greedily
ROLES = ("system", "user", "assistant")
__all__ = [
    "PRESETS",
    "Chat",
    "ChatResult",
    "ChatStream",
    "SamplingParams",
    "chat_runner",
    "normalize_messages",
]


@dataclass
class SamplingParams:
    """How to generate (checked values of the declared options): ``temperature`` 0 (or below
    1e-5) or ``top_p`` 0 means greedy decoding."""

    temperature: float = TEMPERATURE
    top_p: float = TOP_P
    max_tokens: int = MAX_TOKENS
    stop: tuple[str, ...] = ()
    seed: int | None = None
    min_tokens: int = MIN_TOKENS
    repetition_penalty: float = REPETITION_PENALTY

    @property
    def greedy(self) -> bool:
        # a temperature this small makes sampling argmax anyway, and below ~1e-37 logits / T
        # overflow float32 (inf, then NaN probabilities): decode it greedily
        return self.temperature < GREEDY_BELOW or self.top_p == 0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SamplingParams:
        """From checked call options (every declared one present)."""
        stop = tuple(options["stop"] or ())
        if any(not s for s in stop):
            raise InputError("option --stop: a stop string cannot be empty")
        return cls(
            temperature=options["temperature"],
            top_p=options["top_p"],
            max_tokens=options["max_tokens"],
            stop=stop,
            seed=options["seed"],
            min_tokens=options["min_tokens"],
            repetition_penalty=options["repetition_penalty"],
        )


@dataclass(kw_only=True)
class ChatResult(Result):
    """One assistant reply with its token counts, timings and the document chunks it was given."""

    text: str = ""
    finish_reason: str = "stop"  # stop | length | cancelled
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    trimmed_messages: int = 0
    max_tokens_used: int = 0
    time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None
    preset: str | None = None
    conversation_id: str | None = None
    engine: str = ""  # what decoded: transformers | llama.cpp
    citations: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, str]] = private(default_factory=list)

    def summary(self) -> str:
        tail = f"\n[{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens, {self.finish_reason}]"
        refs = "".join(f"\n  [{c['n']}] {c['source']}#{c['chunk']}" for c in self.citations)
        return self.text + tail + refs


def normalize_messages(messages: Any) -> list[dict[str, str]]:
    """Check and copy ``messages``: a string becomes one user message; roles and contents are validated."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InputError("messages must be a non-empty list of {'role': ..., 'content': ...} (or one string)")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InputError(
                f"messages[{i}] must be an object with 'role' and 'content', got {type(m).__name__}"
            )
        role = m.get("role")
        if role == "developer":  # OpenAI's newer name for system
            role = "system"
        if role not in ROLES:
            raise InputError(f"messages[{i}].role must be one of {', '.join(ROLES)}, got {role!r}")
        content = m.get("content")
        if content is None and role == "assistant":  # OpenAI allows null content on assistant turns
            content = ""
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            texts = []
            for part in content:
                if (
                    not isinstance(part, dict)
                    or part.get("type") != "text"
                    or not isinstance(part.get("text"), str)
                ):
                    raise InputError(f"messages[{i}].content parts must be {{'type': 'text', 'text': ...}}")
                texts.append(part["text"])
            content = "".join(texts)
        if not isinstance(content, str):
            raise InputError(f"messages[{i}].content must be a string, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    if out[-1]["role"] == "assistant":
        raise InputError("the last message must come from the user (or system), not the assistant")
    return out


class _TextDeltas:
    """Turns generated token ids into text deltas and applies stop strings.

    Text that could be the start of a stop string, or an incomplete UTF-8 character, is held
    back until it is certain; a completed stop string sets ``stopped`` (generation then ends).
    """

    def __init__(self, detokenize: Callable[[list[int]], str] | Any, stop: Sequence[str]) -> None:
        if not callable(detokenize):  # a tokenizer with transformers' decode()
            tokenizer = detokenize
            detokenize = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        self.detokenize = detokenize  # ids -> text without special tokens (the engine's)
        self.stop = tuple(stop)
        self.ids: list[int] = []
        self.emitted = 0
        self.text = ""
        self.stopped = False  # a stop string matched
        self.first_token_time: float | None = None
        self.overhead_s = 0.0  # time spent here (decoding, stop strings) between decoding steps

    def add(self, token: int) -> str:
        """Take one new token; return the text that is now certain (possibly "")."""
        if self.stopped:
            return ""
        t0 = time.perf_counter()
        if self.first_token_time is None:
            self.first_token_time = t0
        self.ids.append(token)
        self.text = self.detokenize(self.ids)
        piece = self._emit(final=False)
        self.overhead_s += time.perf_counter() - t0
        return piece

    def finish(self) -> str:
        """The text held back so far, once generation has ended."""
        return self._emit(final=True)

    def _emit(self, final: bool) -> str:
        text = self.text
        limit = len(text)
        for s in self.stop:
            at = text.find(s, max(0, self.emitted - len(s)))
            if at != -1 and at < limit:
                limit = at
                self.stopped = True
        if self.stopped:
            self.text = text[:limit]
        elif not final:
            limit = len(text.rstrip("\ufffd"))  # an incomplete multi-byte character
            limit -= self._held_back(text, limit)
        if limit > self.emitted:
            piece = text[self.emitted : limit]
            self.emitted = limit
            return piece
        return ""

    def _held_back(self, text: str, limit: int) -> int:
        """How many characters before ``limit`` could start a stop string: the longest tail of
        ``text[:limit]`` that is a prefix of one. Only the last ``len(stop) - 1`` characters are
        looked at, so a token costs the same however long the reply grows."""
        hold = 0
        for s in self.stop:
            start = max(0, limit - len(s) + 1, self.emitted)
            at = text.find(s[0], start, limit)
            while at != -1 and limit - at > hold:
                if s.startswith(text[at:limit]):
                    hold = limit - at
                    break
                at = text.find(s[0], at + 1, limit)
        return hold


def text_pieces(deltas: _TextDeltas, tokens: Iterable[int], timing: dict[str, float]) -> Iterator[str]:
    """Text pieces of a token stream up to a stop string; ``timing["first"]`` = first piece's time."""
    for token in tokens:
        piece = deltas.add(token)
        if piece:
            timing.setdefault("first", time.perf_counter())
            yield piece
        if deltas.stopped:
            break
    tail = deltas.finish()
    if tail:
        timing.setdefault("first", time.perf_counter())
        yield tail


class ChatStream:
    """An iterator of text deltas for one reply; ``result`` holds the ChatResult once it ends.

    Decoding runs in the thread that iterates, one token per step (no background thread), so a
    reply costs what ``model.generate`` costs. ``cancel()`` (from any thread) stops generation at
    the next token, e.g. when an HTTP client disconnects; closing the iterator early does too.
    Iterating to the end is what finishes the result.
    """

    def __init__(self, chat: Chat, prepared: dict[str, Any]) -> None:
        self.chat = chat
        self.prepared = prepared
        self.result: ChatResult | None = None
        self._cancel = threading.Event()
        self._started = False
        self._deltas: _TextDeltas | None = None
        self.t_start = prepared["t_start"]
        self.on_done: list[Any] = []  # callables(result) run when the reply is complete

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise RuntimeError("a ChatStream can be iterated only once; read .result or start a new reply")
        self._started = True
        prep = self.prepared
        lm = self.chat.loaded
        deltas = _TextDeltas(lm.detokenize, prep["params"].stop)
        self._deltas = deltas
        timing: dict[str, float] = {}
        lm.lock.acquire()  # one generation at a time on this model: requests are served in turn
        try:
            t_gen = time.perf_counter()
            yield from text_pieces(deltas, self.chat.decode(prep, self._cancel), timing)
            t_end = time.perf_counter()
        finally:
            lm.lock.release()
        self._complete(deltas, timing.get("first"), t_gen, t_end)

    def _complete(self, deltas: _TextDeltas, first: float | None, t_gen: float, t_end: float) -> None:
        """Build the result once decoding has ended and run the ``on_done`` callbacks."""
        n = len(deltas.ids)
        if self._cancel.is_set():
            reason = "cancelled"
        elif deltas.stopped or n < self.prepared["max_new"]:
            reason = "stop"
        else:
            reason = "length"
        decode_s = t_end - (deltas.first_token_time or t_gen)
        self.result = self.chat._finish(
            self.prepared,
            text=deltas.text,
            completion_tokens=n,
            finish_reason=reason,
            ttft_ms=((first or t_end) - self.t_start) * 1e3,
            tps=(n - 1) / decode_s if n > 1 and decode_s > 0 else None,
            stages={
                "generate": round((t_end - t_gen) * 1e3, 2),
                "streamer_overhead": round(deltas.overhead_s * 1e3, 3),
            },
        )
        for callback in self.on_done:
            callback(self.result)

    def text(self) -> str:
        """Consume the stream and return the whole reply."""
        return "".join(self)


class Chat(Runner):
    """A chat model with presets, sampling, stop strings, history trimming and retrieval.

    ``model``: a registered name or alias (default ``smollm2-135m-instruct``, after ``deepapps
    pull``), a local transformers folder, a ``.gguf`` file, or a hub id (online only), resolved by
    the core like ``deepapps.load`` does; ``device`` and ``precision`` likewise (``auto``).
    ``options``: any of the chat task's declared options, checked against the declaration (a
    misspelt name is refused with a suggestion). Load-time ones configure this Chat: ``docs`` (a
    folder, or a :class:`~deepapps_nlp.retrieval.DocIndex`) to answer from with citations,
    ``retriever`` (``bm25``, ``embed`` or ``hybrid``), ``doc_chunks``, ``chunk_words``,
    ``chunk_overlap``, ``context_window``, ``engine`` (``auto``, ``llama.cpp`` or
    ``transformers``); call-time ones (``temperature``, ``top_p``,
    ``max_tokens``, ``stop``, ``seed``, ``preset``, ``system`` ...) become its defaults.
    ``deepapps.load("chat")`` builds the same object through :func:`chat_runner`.
    """

    task = TASK

    def __init__(
        self,
        model: str | Path | ModelRef | ModelSpec | None = None,
        device: str = "auto",
        precision: str = "auto",
        **options: Any,
    ) -> None:
        from deepapps.options import check_options, split_by_when
        from deepapps.registry import registry
        from deepapps.resolution import resolve_model
        from deepapps.runtime.device import select_device
        from deepapps.runtime.precision import select_precision

        from .retrieval import DocIndex

        spec = registry.task(TASK)
        index = options.pop("docs") if isinstance(options.get("docs"), DocIndex) else None
        checked = check_options(spec.options, _one_stop(options), "Chat", fill_defaults=False)
        load, call = split_by_when(spec.options, checked)
        load = {o.name: load.get(o.name, o.default) for o in spec.options if o.when == "load"}
        if index is None:
            check_run_options(load)  # a missing docs folder is refused before the model loads
        ref = resolve_model(spec, model)
        device = select_device(device)
        self._setup(ref, device, select_precision(precision, device, spec.precisions), index=index, **load)
        self._bound = call

    @classmethod
    def from_ref(
        cls,
        model: ModelRef,
        device: str,
        precision: str,
        *,
        docs: Path | None = None,
        retriever: str = RETRIEVER,
        doc_chunks: int = DOC_CHUNKS,
        chunk_words: int = CHUNK_WORDS,
        chunk_overlap: int = CHUNK_OVERLAP,
        context_window: int | None = None,
        engine: str = ENGINE,
    ) -> Chat:
        """A chat for an already resolved model, device and precision (what the core hands over)."""
        chat = cls.__new__(cls)
        chat._setup(
            model,
            device,
            precision,
            docs=docs,
            retriever=retriever,
            doc_chunks=doc_chunks,
            chunk_words=chunk_words,
            chunk_overlap=chunk_overlap,
            context_window=context_window,
            engine=engine,
        )
        return chat

    def _setup(
        self,
        model: ModelRef,
        device: str,
        precision: str,
        *,
        docs: Path | None,
        retriever: str,
        doc_chunks: int,
        chunk_words: int,
        chunk_overlap: int,
        context_window: int | None,
        engine: str = ENGINE,
        index: Any = None,
    ) -> None:
        from .engines import choose_engine, load_engine
        from .engines.base import no_template_error
        from .retrieval import DocIndex

        t0 = time.perf_counter()
        choose_engine(engine, model, device)  # a wrong --engine fails before documents are indexed
        if index is None and docs is not None:  # documents first: a bad folder fails before the model loads
            index = DocIndex.from_folder(
                docs, retriever=retriever, max_words=chunk_words, overlap=chunk_overlap
            )
        self.loaded = load_engine(model, device, precision, context_window, engine)
        if not self.loaded.has_template:
            raise no_template_error(self.loaded.name)
        Runner.__init__(self, model_name=self.loaded.name, device=device, precision=precision)
        self.model_ref = model
        self.index = index
        self.doc_chunks = doc_chunks
        self.load_ms = (time.perf_counter() - t0) * 1e3

    # options and views -------------------------------------------------------
    def check_call_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """The declared check, with one chat rule: a plain string ``stop`` is one stop string
        (from Python or the server), not a comma-separated list."""
        return super().check_call_options(_one_stop(given))

    @property
    def preset(self) -> str | None:
        """The preset this chat uses when a call names none."""
        return self._bound.get("preset")

    @property
    def defaults(self) -> SamplingParams:
        """The sampling a call without options gets (declared defaults, then this chat's)."""
        return SamplingParams.from_options(self.check_call_options({}))

    def with_docs(self, docs: Any, retriever: str = RETRIEVER, doc_chunks: int | None = None) -> Chat:
        """This chat (same loaded model, same defaults) answering from ``docs``: a
        :class:`~deepapps_nlp.retrieval.DocIndex`, a folder, or ``None`` for no documents."""
        from .retrieval import DocIndex

        view = copy.copy(self)
        if docs is not None and not isinstance(docs, DocIndex):
            docs = DocIndex.from_folder(docs, retriever=retriever)
        view.index = docs
        view.doc_chunks = doc_chunks or self.doc_chunks
        return view

    # properties --------------------------------------------------------------
    @property
    def engine(self) -> str:
        """What runs the model: ``transformers`` or ``llama.cpp``."""
        return self.loaded.engine

    @property
    def tokenizer(self) -> Any:
        """The transformers tokenizer (the transformers engine only)."""
        return self.loaded.tokenizer

    @property
    def context_window(self) -> int:
        return self.loaded.context_window

    def count_tokens(self, text: str) -> int:
        return len(self.loaded.encode(text))

    # prompt building -----------------------------------------------------------
    def system_prompt(self, preset: str | None = None, system: str | None = None) -> str | None:
        """The system message for a preset (or the explicit ``system`` text)."""
        if system is not None:
            return system
        return PRESETS[preset] if preset else None

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages`` through the model's chat template."""
        return self.loaded.render(messages, add_generation_prompt=add_generation_prompt)

    def prepare(self, messages: Any, *, conversation_id: str | None = None, **options: Any) -> dict[str, Any]:
        """Check the options, add the system prompt and retrieved documents, trim history, tokenize."""
        return self._prepare(messages, self.check_call_options(options), conversation_id)

    def _prepare(
        self, messages: Any, options: dict[str, Any], conversation_id: str | None = None
    ) -> dict[str, Any]:
        t_start = time.perf_counter()
        params = SamplingParams.from_options(options)
        msgs = normalize_messages(messages)
        if not any(m["role"] == "system" for m in msgs):
            sys_text = self.system_prompt(options["preset"], options["system"])
            if sys_text:
                msgs.insert(0, {"role": "system", "content": sys_text})
        query = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), None)
        citations = self._add_documents(msgs, query)
        kept, trimmed, ids = self._trim(msgs, params.max_tokens)
        return {
            "t_start": t_start,
            "params": params,
            "messages": kept,
            "all_messages": msgs,
            "trimmed": trimmed,
            "input_ids": ids,
            "prompt_tokens": len(ids),
            "max_new": min(params.max_tokens, self.context_window - len(ids)),
            "preset": options["preset"],
            "citations": citations,
            "conversation_id": conversation_id,
            "source": query if query is not None else msgs[-1]["content"],
        }

    def _add_documents(self, msgs: list[dict[str, str]], query: str | None) -> list[dict[str, Any]]:
        """Put the best chunks for ``query`` into the system message; return them as citations."""
        if self.index is None or query is None:
            return []
        hits = self.index.search(query, k=self.doc_chunks)
        citations = [{"n": i + 1, **h.to_dict()} for i, h in enumerate(hits)]
        if hits:
            block = "\n\n".join(f"[{c['n']}] ({c['source']}) {c['text']}" for c in citations)
            doc_text = f"Documents:\n{block}\n\nAnswer from these documents and cite them like [1]."
            if msgs[0]["role"] == "system":
                msgs[0] = {"role": "system", "content": msgs[0]["content"] + "\n\n" + doc_text}
            else:
                msgs.insert(0, {"role": "system", "content": doc_text})
        return citations

    def _trim(
        self, msgs: list[dict[str, str]], max_tokens: int
    ) -> tuple[list[dict[str, str]], int, list[int]]:
        """Drop the oldest non-system messages (never the last) until the prompt plus
        ``max_tokens`` fits. Linear: each message is tokenised once to learn what it costs,
        then the kept prompt is checked with one more encode (rarely two)."""
        window = self.context_window
        ids = self._encode(msgs)
        if len(ids) + max_tokens <= window:
            return list(msgs), 0, ids
        costs = self._message_costs(msgs, len(ids))
        droppable = [i for i, m in enumerate(msgs[:-1]) if m["role"] != "system"]
        dropped: set[int] = set()
        kept = msgs
        while len(ids) + max_tokens > window and len(dropped) < len(droppable):
            excess = len(ids) + max_tokens - window
            for i in droppable:  # drop the oldest until their estimated cost covers the excess
                if i in dropped:
                    continue
                dropped.add(i)
                excess -= costs[i]
                if excess <= 0:
                    break
            kept = [m for i, m in enumerate(msgs) if i not in dropped]
            ids = self._encode(kept)
        if len(ids) >= window:
            raise InputError(
                f"the prompt is {len(ids)} tokens, which does not fit the model's context window of "
                f"{window} tokens even after dropping {len(dropped)} older message(s); shorten the last message"
            )
        return kept, len(dropped), ids

    def _message_costs(self, msgs: list[dict[str, str]], total: int) -> list[int]:
        """Tokens each message adds to the rendered prompt, from one tokenizer pass.

        The rendered prompt is cut after each message's content; each piece (template markup +
        content) is one message's cost, exact for templates that wrap each message on its own
        (ChatML and most others). If a template rewrites contents, contents are counted alone
        and the template's overhead is shared out evenly."""
        text = self.render(msgs)
        cuts, pos = [], 0
        for m in msgs:
            at = text.find(m["content"], pos)
            if at < 0:
                break
            pos = at + len(m["content"])
            cuts.append(pos)
        if len(cuts) == len(msgs):
            pieces = [text[a:b] for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]
            return [len(x) for x in self.loaded.encode_many(pieces)]
        contents = [m["content"] for m in msgs]
        counts = [len(x) for x in self.loaded.encode_many(contents)]
        overhead = max(0, total - sum(counts)) // len(msgs)
        return [c + overhead for c in counts]

    def _encode(self, msgs: list[dict[str, str]]) -> list[int]:
        return self.loaded.encode(self.render(msgs))

    def _params(self, options: dict[str, Any]) -> SamplingParams:
        """Checked sampling parameters for ``options`` (the server validates requests with it)."""
        return SamplingParams.from_options(self.check_call_options(dict(options)))

    # generation ----------------------------------------------------------------
    def eos_ids(self) -> list[int]:
        """Token ids that end a reply (the engine's end-of-sequence set)."""
        return self.loaded.eos_ids()

    def generation_kwargs(self, prep: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``model.generate`` (transformers engine; the benchmarks' raw baseline)."""
        return self.loaded.generation_kwargs(prep)

    def decode(self, prep: dict[str, Any], cancel: threading.Event | None = None) -> Iterator[int]:
        """Generate token ids for a prepared prompt, one per step, in the calling thread.

        The engine's decoding (:meth:`~deepapps_nlp.engines.base.ChatEngine.decode`): greedy at
        temperature 0, else temperature + top-p sampling; repetition penalty; no end-of-sequence
        before ``min_tokens``; a ``seed`` seeds this reply only. For the transformers engine it is
        exactly ``model.generate(**generation_kwargs(prep))``, as a loop over the model with its
        KV cache, so each token reaches the caller as soon as it exists. The end-of-sequence
        token, when reached, is the last id yielded.
        """
        return self.loaded.decode(prep, cancel)

    def _finish(
        self,
        prep: dict[str, Any],
        *,
        text: str,
        completion_tokens: int,
        finish_reason: str,
        ttft_ms: float,
        tps: float | None,
        stages: dict[str, float],
    ) -> ChatResult:
        reply = {"role": "assistant", "content": text}
        if self.index is not None:
            for c in prep["citations"]:
                c["cited_in_answer"] = f"[{c['n']}]" in text
        result = ChatResult(
            task=self.task,
            model=self.model_name,
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=prep["prompt_tokens"],
            completion_tokens=completion_tokens,
            total_tokens=prep["prompt_tokens"] + completion_tokens,
            trimmed_messages=prep["trimmed"],
            max_tokens_used=prep["max_new"],
            time_to_first_token_ms=round(ttft_ms, 2),
            tokens_per_second=round(tps, 2) if tps else None,
            preset=prep["preset"],
            conversation_id=prep["conversation_id"],
            engine=self.engine,
            citations=prep["citations"],
            messages=prep["all_messages"] + [reply],
        )
        prepare_ms = round((prep["t_prepared"] - prep["t_start"]) * 1e3, 2)
        return self.finish(result, prep["source"], {"prepare": prepare_ms, **stages}, started=prep["t_start"])

    # public API ------------------------------------------------------------------
    def stream_reply(
        self, messages: Any, *, conversation_id: str | None = None, **options: Any
    ) -> ChatStream:
        """Start a reply: iterate the returned :class:`ChatStream` for text deltas, then read ``.result``."""
        return self._stream(self.prepare(messages, conversation_id=conversation_id, **options))

    def _stream(self, prep: dict[str, Any]) -> ChatStream:
        prep["t_prepared"] = time.perf_counter()
        return ChatStream(self, prep)

    def _reply(self, item: Any, options: dict[str, Any]) -> ChatResult:
        stream = self._stream(self._prepare(item, options))
        for _ in stream:
            pass
        assert stream.result is not None
        return stream.result

    def run_one(self, item: Any, **options: Any) -> ChatResult:
        return self._reply(item, self.check_call_options(options))

    def __call__(
        self,
        inputs: Any,
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
        min_tokens: int,
        repetition_penalty: float,
        stop: list[str] | None,
        seed: int | None,
        preset: str | None,
        system: str | None,
    ) -> ChatResult | list[ChatResult]:
        """A string or one message list gives one ChatResult; a list of those gives a list.

        The options arrive checked, with this chat's defaults filled in (see :class:`Runner`).
        """
        options = {
            "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "min_tokens": min_tokens,
            "repetition_penalty": repetition_penalty, "stop": stop, "seed": seed, "preset": preset,
            "system": system,
        }  # fmt: skip
        if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(x, (str, list)) for x in inputs):
            return [self._reply(x, options) for x in inputs]
        return self._reply(inputs, options)

    def reply(self, messages: Any, **options: Any) -> str:
        """The assistant's reply text for ``messages`` (no streaming)."""
        return self.run_one(messages, **options).text

    def ask(
        self, text: str, conversation_id: str | None = None, store: Any = None, **options: Any
    ) -> ChatStream:
        """Continue (or start) a stored conversation with ``text``; both turns are saved when it ends.

        The new id is in ``stream.result.conversation_id`` (and ``stream.prepared``).
        """
        from .store import ConversationStore

        if not isinstance(text, str) or not text.strip():
            raise InputError("the message is empty; type a question or instruction")
        checked = self.check_call_options(options)
        store = store or ConversationStore()
        conversation = store.get(conversation_id) if conversation_id else None
        history = conversation.chat_messages() if conversation else []
        prep = self._prepare(history + [{"role": "user", "content": text}], checked)
        if conversation:
            prep["conversation_id"] = conversation.id
        else:  # created once the prompt is known to fit, so a refused prompt leaves no empty conversation
            title = text.strip().splitlines()[0][:80]
            prep["conversation_id"] = store.create(
                title=title, model=self.model_name, preset=checked["preset"]
            )
        stream = self._stream(prep)
        stream.on_done.append(lambda result: _save_exchange(store, prep["conversation_id"], text, result))
        return stream

    def complete_prompt(self, prompt: str, **options: Any) -> ChatStream:
        """Stream a continuation of a raw ``prompt`` (no chat template): for code generation."""
        params = self._params(options)
        ids = self.loaded.encode(prompt)
        if len(ids) >= self.context_window:
            raise InputError(f"the prompt is {len(ids)} tokens; the context window is {self.context_window}")
        prep = {
            "t_start": time.perf_counter(),
            "params": params,
            "messages": [],
            "all_messages": [],
            "trimmed": 0,
            "input_ids": ids,
            "prompt_tokens": len(ids),
            "max_new": min(params.max_tokens, self.context_window - len(ids)),
            "preset": None,
            "citations": [],
            "conversation_id": None,
            "source": prompt,
        }
        return self._stream(prep)


def _one_stop(options: dict[str, Any]) -> dict[str, Any]:
    """A plain string ``stop`` is one stop string (commas included)."""
    if isinstance(options.get("stop"), str):
        return {**options, "stop": [options["stop"]]}
    return options


def _save_exchange(store: Any, conversation_id: str, text: str, result: ChatResult) -> None:
    """Both turns of a finished reply, in one transaction."""
    meta: dict[str, Any] = {
        "finish_reason": result.finish_reason,
        "completion_tokens": result.completion_tokens,
    }
    if result.citations:
        meta["citations"] = result.citations
    store.add_turns(
        conversation_id,
        [{"role": "user", "content": text}, {"role": "assistant", "content": result.text, "meta": meta}],
    )


def chat_runner(
    model: ModelRef,
    device: str,
    precision: str,
    *,
    docs: Path | None,
    retriever: str,
    doc_chunks: int,
    chunk_words: int,
    chunk_overlap: int,
    context_window: int | None,
    engine: str,
) -> Chat:
    """TaskSpec runner factory for ``chat``: ``deepapps.load("chat", docs="faq/", engine="llama.cpp")``."""
    return Chat.from_ref(
        model,
        device,
        precision,
        docs=docs,
        retriever=retriever,
        doc_chunks=doc_chunks,
        chunk_words=chunk_words,
        chunk_overlap=chunk_overlap,
        context_window=context_window,
        engine=engine,
    )
