"""The ``Chat`` API: messages in, streamed text out, with presets, sampling controls,
stop strings, seeds, history trimming, retrieval and token counts.

    from deepapps_nlp import Chat
    chat = Chat(preset="tutoring")                      # default model: smollm2-135m-instruct
    for piece in chat.stream_reply("Why is the sky blue?"):
        print(piece, end="", flush=True)
    result = chat("What is 2 + 3?", temperature=0)      # a ChatResult

History policy (when ``prompt + max_tokens`` exceeds the context window): system messages
and the last message are always kept; the oldest other messages are dropped first, one at a
time, until the prompt plus ``max_tokens`` fits. If the kept messages alone still leave no
room, the prompt is refused with an :class:`~deepapps.InputError` when it does not fit at all,
else ``max_tokens`` is lowered to the room left (the result says so in ``max_tokens_used``).

The same class serves the CLI, the OpenAI-compatible server, the UI page, evaluation and
benchmarks, and is meant to be reused for code generation (``Chat.complete_prompt`` takes a
raw prompt string without the chat template).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from deepapps import InputError, ModelSpec, Result, Runner
from deepapps.results import private
from deepapps.runtime.offline import apply_offline_policy

apply_offline_policy()  # before transformers is imported: a hub id fails at once, not after ~46 s

ROLES = ("system", "user", "assistant")

PRESETS: dict[str, str] = {
    "assistant": "You are a helpful, concise assistant. Answer accurately; say so when you do not know.",
    "programming": (
        "You are an expert programming assistant. Give correct, runnable code in fenced code blocks "
        "with the language named, explain briefly, and point out bugs and edge cases."
    ),
    "tutoring": (
        "You are a patient tutor. Explain step by step in simple words, check understanding with a "
        "short question, and give hints before full answers when the student is practising."
    ),
    "content": (
        "You are a creative writing assistant. Write clear, engaging text in the tone and length "
        "the user asks for: posts, emails, stories, product descriptions, headlines."
    ),
    "customer-service": (
        "You are a friendly customer service agent. Answer only from the company documents you are "
        "given; cite them like [1]. If the documents do not answer, say you will pass the question "
        "to a human colleague."
    ),
}
DEFAULT_PRESET = "assistant"


@dataclass
class SamplingParams:
    """How to generate: ``temperature`` 0 means greedy decoding."""

    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    min_tokens: int = 0
    repetition_penalty: float = 1.0

    def validate(self) -> SamplingParams:
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature <= 2:
            raise InputError(f"temperature must be a number in [0, 2], got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be a number in (0, 1], got {self.top_p!r}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise InputError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if isinstance(self.stop, str):
            self.stop = (self.stop,)
        self.stop = tuple(self.stop or ())
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise InputError(f"stop must be a string or a list of non-empty strings, got {self.stop!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise InputError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.min_tokens, int) or self.min_tokens < 0:
            raise InputError(f"min_tokens must be a non-negative integer, got {self.min_tokens!r}")
        return self


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

    def __init__(self, tokenizer: Any, stop: Sequence[str]) -> None:
        self.tokenizer = tokenizer
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
        self.text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
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
        chat, prep = self.chat, self.prepared
        lm = chat.loaded
        params: SamplingParams = prep["params"]
        deltas = _TextDeltas(lm.tokenizer, params.stop)
        self._deltas = deltas
        first: float | None = None
        lm.lock.acquire()  # one generation at a time on this model: requests are served in turn
        try:
            t_gen = time.perf_counter()
            for token in chat.decode(prep, self._cancel):
                piece = deltas.add(token)
                if piece:
                    if first is None:
                        first = time.perf_counter()
                    yield piece
                if deltas.stopped:
                    break
            tail = deltas.finish()
            if tail:
                if first is None:
                    first = time.perf_counter()
                yield tail
            t_end = time.perf_counter()
        finally:
            lm.lock.release()
        n = len(deltas.ids)
        if self._cancel.is_set():
            reason = "cancelled"
        elif deltas.stopped or (n < prep["max_new"]):
            reason = "stop"
        else:
            reason = "length"
        decode_s = t_end - (deltas.first_token_time or t_gen)
        self.result = chat._finish(
            prep,
            text=deltas.text,
            completion_tokens=n,
            finish_reason=reason,
            ttft_ms=((first or t_end) - self.t_start) * 1e3,
            tps=(n - 1) / decode_s if n > 1 and decode_s > 0 else None,
            generate_ms=(t_end - t_gen) * 1e3,
        )
        self.result.timings["streamer_overhead"] = round(deltas.overhead_s * 1e3, 3)
        for callback in self.on_done:
            callback(self.result)

    def text(self) -> str:
        """Consume the stream and return the whole reply."""
        return "".join(self)


class Chat(Runner):
    """A chat model with presets, sampling, stop strings, history trimming and retrieval.

    ``model``: a registered name (default ``smollm2-135m-instruct``, after ``deepapps pull``),
    a local transformers folder, a ``.gguf`` file, or a hub id (online only).
    ``docs``: a folder (or :class:`~deepapps_nlp.retrieval.DocIndex`) to answer from, with citations;
    ``retriever``: ``bm25`` (default), ``embed`` or ``hybrid`` (the last two need ``deepapps pull minilm-l6-v2``).
    Other keywords set default sampling (``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``seed``).
    """

    task = "chat"

    def __init__(
        self,
        model: ModelSpec | str | None = None,
        device: str = "cpu",
        *,
        preset: str | None = None,
        system: str | None = None,
        docs: Any = None,
        retriever: str = "bm25",
        top_k_docs: int = 3,
        dtype: str | None = None,
        context_window: int | None = None,
        **sampling: Any,
    ) -> None:
        from .models import get_model

        if model is None:
            import deepapps

            _, model = deepapps.resolve_model("chat", None)
        if preset is not None and preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        self.loaded = get_model(model, device=device, dtype=dtype, context_window=context_window)
        super().__init__(model_name=self.loaded.name, device=device)
        self.preset = preset
        self.system = system
        self.defaults = SamplingParams(**_sampling_kwargs(sampling)).validate()
        self.top_k_docs = top_k_docs
        self.index = None
        if docs is not None:
            from .retrieval import DocIndex

            self.index = (
                docs if isinstance(docs, DocIndex) else DocIndex.from_folder(docs, retriever=retriever)
            )

    # properties --------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def context_window(self) -> int:
        return self.loaded.context_window

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # prompt building -----------------------------------------------------------
    def system_prompt(self, preset: str | None = None, system: str | None = None) -> str | None:
        """The system message for a preset (or the explicit ``system`` text)."""
        if system is not None:
            return system
        name = preset or self.preset
        return PRESETS[name] if name else None

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages`` through the tokenizer's chat template."""
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def prepare(self, messages: Any, **overrides: Any) -> dict[str, Any]:
        """Validate, add the system prompt and retrieved documents, trim history, tokenize."""
        t_start = time.perf_counter()
        preset = overrides.pop("preset", None)
        if preset is not None and preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        system = overrides.pop("system", None)
        use_docs = overrides.pop("use_docs", True)
        conversation_id = overrides.pop("conversation_id", None)
        params = self._params(overrides)
        msgs = normalize_messages(messages)
        citations: list[dict[str, Any]] = []
        if not any(m["role"] == "system" for m in msgs):
            sys_text = self.system_prompt(preset, system)
            if sys_text:
                msgs.insert(0, {"role": "system", "content": sys_text})
        query = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), None)
        if self.index is not None and use_docs and query is not None:
            hits = self.index.search(query, k=self.top_k_docs)
            citations = [{"n": i + 1, **h.to_dict()} for i, h in enumerate(hits)]
            if hits:
                block = "\n\n".join(f"[{c['n']}] ({c['source']}) {c['text']}" for c in citations)
                doc_text = f"Documents:\n{block}\n\nAnswer from these documents and cite them like [1]."
                if msgs[0]["role"] == "system":
                    msgs[0] = {"role": "system", "content": msgs[0]["content"] + "\n\n" + doc_text}
                else:
                    msgs.insert(0, {"role": "system", "content": doc_text})
        kept, trimmed, ids = self._trim(msgs, params.max_tokens)
        room = self.context_window - len(ids)
        max_new = min(params.max_tokens, room)
        return {
            "t_start": t_start,
            "params": params,
            "messages": kept,
            "all_messages": msgs,
            "trimmed": trimmed,
            "input_ids": ids,
            "prompt_tokens": len(ids),
            "max_new": max_new,
            "preset": preset or self.preset,
            "citations": citations,
            "conversation_id": conversation_id,
        }

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
            return [len(x) for x in self.tokenizer(pieces, add_special_tokens=False)["input_ids"]]
        contents = [m["content"] for m in msgs]
        counts = [len(x) for x in self.tokenizer(contents, add_special_tokens=False)["input_ids"]]
        overhead = max(0, total - sum(counts)) // len(msgs)
        return [c + overhead for c in counts]

    def _encode(self, msgs: list[dict[str, str]]) -> list[int]:
        return self.tokenizer(self.render(msgs), add_special_tokens=False)["input_ids"]

    def _params(self, overrides: dict[str, Any]) -> SamplingParams:
        values = {**self.defaults.__dict__, **_sampling_kwargs(overrides)}
        unknown = set(overrides) - set(SamplingParams.__dataclass_fields__) - {"max_new_tokens"}
        if unknown:
            raise InputError(
                f"unknown chat option(s) {sorted(unknown)}; valid: preset, system, "
                + ", ".join(SamplingParams.__dataclass_fields__)
            )
        return SamplingParams(**values).validate()

    # generation ----------------------------------------------------------------
    def generation_kwargs(self, prep: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``model.generate`` (also used by the raw baseline in benchmarks)."""
        p: SamplingParams = prep["params"]
        tok = self.tokenizer
        eos = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        im_end = tok.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != tok.unk_token_id:
            eos.add(im_end)
        kwargs: dict[str, Any] = {
            "max_new_tokens": prep["max_new"],
            "min_new_tokens": min(p.min_tokens, prep["max_new"]) or None,
            "eos_token_id": sorted(eos) or None,
            "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else (sorted(eos) or [0])[0],
            "repetition_penalty": p.repetition_penalty if p.repetition_penalty != 1.0 else None,
        }
        if p.temperature == 0:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=float(p.temperature), top_p=float(p.top_p), top_k=0)
        return {k: v for k, v in kwargs.items() if v is not None or k in ("temperature", "top_p", "top_k")}

    def decode(self, prep: dict[str, Any], cancel: threading.Event | None = None) -> Iterator[int]:
        """Generate token ids for a prepared prompt, one per step, in the calling thread.

        The same decoding as ``model.generate(**generation_kwargs(prep))`` (greedy at
        temperature 0, else temperature + top-p sampling; repetition penalty; no end-of-sequence
        before ``min_tokens``), written as a loop over the model with its KV cache so that each
        token reaches the caller as soon as it exists, without a streaming thread. The
        end-of-sequence token, when reached, is the last id yielded.
        """
        import torch
        from transformers import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopPLogitsWarper,
        )

        lm = self.loaded
        model = lm.model
        p: SamplingParams = prep["params"]
        max_new = prep["max_new"]
        eos = set(self.generation_kwargs(prep).get("eos_token_id") or [])
        eos_ids = sorted(eos)
        min_new = min(p.min_tokens, max_new)
        sample = p.temperature > 0
        processors = LogitsProcessorList()
        if p.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(p.repetition_penalty))
        if sample:
            processors.append(TemperatureLogitsWarper(float(p.temperature)))
            if p.top_p < 1:
                processors.append(TopPLogitsWarper(float(p.top_p)))
        if p.seed is not None:
            torch.manual_seed(p.seed)
        seq = torch.tensor([prep["input_ids"]], dtype=torch.long, device=lm.device)
        with torch.inference_mode():
            # the prompt: only the last position's logits are needed (as generate() does)
            args = lm.forward_args
            cache_kw = args["cache"]
            out = model(input_ids=seq, use_cache=True, **args["prompt"])
            for step in range(max_new):
                if cancel is not None and cancel.is_set():
                    return
                logits = out.logits[:, -1, :].to(dtype=torch.float32)
                if step < min_new and eos_ids:
                    logits[:, eos_ids] = float("-inf")
                if processors:
                    logits = processors(seq, logits)
                if sample:
                    nxt = torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1)
                else:
                    nxt = torch.argmax(logits, dim=-1, keepdim=True)
                token = int(nxt)
                yield token
                if token in eos or step + 1 == max_new:
                    return
                if processors:
                    seq = torch.cat([seq, nxt], dim=1)
                out = model(input_ids=nxt, use_cache=True, **{cache_kw: out[cache_kw]})

    def _finish(
        self,
        prep: dict[str, Any],
        *,
        text: str,
        completion_tokens: int,
        finish_reason: str,
        ttft_ms: float,
        tps: float | None,
        generate_ms: float,
    ) -> ChatResult:
        reply = {"role": "assistant", "content": text}
        if self.index is not None:
            for c in prep["citations"]:
                c["cited_in_answer"] = f"[{c['n']}]" in text
        return ChatResult(
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
            citations=prep["citations"],
            messages=prep["all_messages"] + [reply],
            timings={
                "prepare": round((prep["t_prepared"] - prep["t_start"]) * 1e3, 2),
                "generate": round(generate_ms, 2),
                "total": round((time.perf_counter() - prep["t_start"]) * 1e3, 2),
            },
        )

    # public API ------------------------------------------------------------------
    def stream_reply(self, messages: Any, **options: Any) -> ChatStream:
        """Start a reply: iterate the returned :class:`ChatStream` for text deltas, then read ``.result``."""
        prep = self.prepare(messages, **options)
        prep["t_prepared"] = time.perf_counter()
        return ChatStream(self, prep)

    def run_one(self, item: Any, **options: Any) -> ChatResult:
        stream = self.stream_reply(item, **options)
        for _ in stream:
            pass
        assert stream.result is not None
        return stream.result

    def __call__(self, inputs: Any, **options: Any) -> ChatResult | list[ChatResult]:
        """A string or one message list gives one ChatResult; a list of those gives a list."""
        if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(x, (str, list)) for x in inputs):
            return [self.run_one(x, **options) for x in inputs]
        return self.run_one(inputs, **options)

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
        store = store or ConversationStore()
        if conversation_id:
            conv = store.get(conversation_id)
            cid, history = conv.id, conv.chat_messages()
        else:
            cid = store.create(
                title=text.strip().splitlines()[0][:80],
                model=self.model_name,
                preset=options.get("preset") or self.preset,
            )
            history = []
        stream = self.stream_reply(
            history + [{"role": "user", "content": text}], conversation_id=cid, **options
        )

        def save(result: ChatResult) -> None:  # both turns in one transaction
            meta: dict[str, Any] = {
                "finish_reason": result.finish_reason,
                "completion_tokens": result.completion_tokens,
            }
            if result.citations:
                meta["citations"] = result.citations
            store.add_turns(
                cid,
                [
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": result.text, "meta": meta},
                ],
            )

        stream.on_done.append(save)
        return stream

    def complete_prompt(self, prompt: str, **options: Any) -> ChatStream:
        """Stream a continuation of a raw ``prompt`` (no chat template): for code generation."""
        params = self._params(dict(options))
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(ids) >= self.context_window:
            raise InputError(f"the prompt is {len(ids)} tokens; the context window is {self.context_window}")
        now = time.perf_counter()
        prep = {
            "t_start": now,
            "t_prepared": now,
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
        }
        return ChatStream(self, prep)


def _sampling_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in options.items() if k in SamplingParams.__dataclass_fields__}
    if "max_new_tokens" in options and "max_tokens" not in options:
        out["max_tokens"] = options["max_new_tokens"]
    if isinstance(out.get("stop"), list):
        out["stop"] = tuple(out["stop"])
    return out


def chat_runner(model: ModelSpec | str, device: str, **options: Any) -> Chat:
    """TaskSpec runner factory for ``chat``: ``deepapps.load("chat", docs="faq/")``."""
    return Chat(model, device, **options)
