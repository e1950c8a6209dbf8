"""The llama.cpp engine: a GGUF model as shipped (quantised), through ``llama-cpp-python``.

The prompt is rendered by the same Jinja path as transformers' (the GGUF's own
``tokenizer.chat_template``), tokenised by llama.cpp, evaluated with ``Llama.eval`` and decoded
token by token with a llama.cpp sampler chain built to match the transformers engine's order:
repetition penalty over the whole sequence (prompt included, as ``generate()`` does), then
temperature, then top-p, then a draw seeded per reply (greedy when the temperature is 0). The
end-of-sequence tokens are llama.cpp's end-of-generation set; ``min_tokens`` masks them in the
logits before sampling. One reply at a time per loaded model (``lock``); the server queues the rest.

AMX: on a CPU that lists AMX, llama.cpp's AMX kernels (batched prompt evaluation of quantised
weights) raised SIGILL on our 2-core VM, whose CPU advertises AMX without enabling it, killing the
process. So where the CPU lists AMX, models load with llama.cpp's extra buffer types off (AMX and
weight repacking; decoding speed is unchanged for Q4_1, which only AMX handled). Set
``DEEPAPPS_LLAMA_CPP_EXTRA_BUFFERS=1`` on hardware where AMX works (``0`` turns them off anywhere).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from deepapps import InputError

from . import LLAMA_CPP, model_gguf
from .base import CHATML_MARKERS, DEFAULT_CHAT_TEMPLATE, compile_template, render_template

TEMPLATE_KEY = "tokenizer.chat_template"
EXTRA_BUFFERS_ENV = "DEEPAPPS_LLAMA_CPP_EXTRA_BUFFERS"
PROMPT_BATCH = 512  # prompt tokens evaluated per llama.cpp batch


class LlamaCppEngine:
    """A loaded ``llama_cpp.Llama`` with the :class:`~.base.ChatEngine` methods."""

    engine = LLAMA_CPP

    def __init__(
        self, llm: Any, name: str, path: str, threads: int, context_window: int | None = None
    ) -> None:
        import llama_cpp

        self.llm = llm
        self.name, self.path, self.device = name, path, "cpu"
        self.threads = threads
        self.lock = threading.Lock()
        # llama.cpp may pad the context it allocates; llama-cpp-python's buffers hold the asked size
        self.context_window = min(int(llm.n_ctx()), context_window or int(llm.n_ctx()))
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._pieces: dict[int, bytes] = {}
        self._eog = [t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(self._vocab, t)]
        source = llm.metadata.get(TEMPLATE_KEY) or None
        self.default_template = source is None and self._knows_chatml()
        if self.default_template:
            source = DEFAULT_CHAT_TEMPLATE
        self.chat_template = source
        self._template = compile_template(source) if source else None
        self._special = {
            "bos_token": self._text(llm.token_bos()),
            "eos_token": self._text(llm.token_eos()),
        }

    # description ---------------------------------------------------------------------------
    @property
    def params(self) -> int:
        import llama_cpp

        return int(llama_cpp.llama_model_n_params(self.llm.model))

    @property
    def has_template(self) -> bool:
        return self._template is not None

    def describe(self) -> dict[str, Any]:
        import llama_cpp

        buf = ctypes.create_string_buffer(256)
        llama_cpp.llama_model_desc(self.llm.model, buf, len(buf))
        return {
            "engine": self.engine,
            "version": llama_cpp.__version__,
            "weights": buf.value.decode("utf-8", "replace"),
            "threads": self.threads,
        }

    def set_threads(self, n: int) -> None:
        """Decode (and evaluate prompts) with ``n`` CPU threads from now on."""
        import llama_cpp

        self.threads = n
        llama_cpp.llama_set_n_threads(self.llm.ctx, n, n)

    # text <-> tokens -----------------------------------------------------------------------
    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        if self._template is None:
            from .base import no_template_error

            raise no_template_error(self.name)
        return render_template(self._template, messages, add_generation_prompt, self._special)

    def encode(self, text: str) -> list[int]:
        if not text:
            return []
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def detokenize(self, ids: Sequence[int]) -> str:
        pieces = self._pieces
        return b"".join(pieces[t] if t in pieces else self._piece(t) for t in ids).decode("utf-8", "replace")

    def _piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (empty for control tokens unless ``special``), memoised."""
        import llama_cpp

        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, size, 0, special)
            if n >= 0:
                break
            size = -n
        piece = buf.raw[:n]
        if not special:
            self._pieces[token] = piece
        return piece

    def _text(self, token: int) -> str:
        return self._piece(token, special=True).decode("utf-8", "replace") if token >= 0 else ""

    def _knows_chatml(self) -> bool:
        return all(len(self.encode(m)) == 1 for m in CHATML_MARKERS)

    def eos_ids(self) -> list[int]:
        return list(self._eog)

    # decoding ------------------------------------------------------------------------------
    def decode(self, prep: dict[str, Any], cancel: threading.Event | None = None) -> Iterator[int]:
        """Evaluate the prompt, then sample one token per step; see the module docstring."""
        import llama_cpp

        p = prep["params"]
        max_new = prep["max_new"]
        min_new = min(p.min_tokens, max_new)
        eog = set(self._eog)
        llm = self.llm
        sampler = self._sampler(p, prep["input_ids"])
        try:
            llm.reset()
            llm.eval(prep["input_ids"])
            for step in range(max_new):
                if cancel is not None and cancel.is_set():
                    return
                if step < min_new:
                    logits = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
                    for t in self._eog:
                        logits[t] = float("-inf")
                token = int(llama_cpp.llama_sampler_sample(sampler, llm.ctx, -1))
                yield token
                if token in eog or step + 1 == max_new:
                    return
                llm.eval([token])
        finally:
            llama_cpp.llama_sampler_free(sampler)

    def _sampler(self, p: Any, prompt: Sequence[int]) -> Any:
        """A llama.cpp sampler chain for ``p``: penalty, temperature, top-p, seeded draw."""
        import llama_cpp

        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = llama_cpp.llama_sampler_chain_add
        if p.repetition_penalty != 1.0:
            penalties = llama_cpp.llama_sampler_init_penalties(
                self.llm.n_vocab(), self.context_window, float(p.repetition_penalty), 0.0, 0.0
            )
            add(chain, penalties)
            for t in prompt:  # transformers penalises the prompt's tokens too
                llama_cpp.llama_sampler_accept(penalties, t)
        if p.greedy:
            add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        add(chain, llama_cpp.llama_sampler_init_temp(float(p.temperature)))
        if p.top_p < 1:
            add(chain, llama_cpp.llama_sampler_init_top_p(float(p.top_p), 1))
        seed = llama_cpp.LLAMA_DEFAULT_SEED if p.seed is None else p.seed % 2**32
        add(chain, llama_cpp.llama_sampler_init_dist(seed))
        return chain


def load_llama_cpp(model: Any, device: str, context_window: int | None) -> LlamaCppEngine:
    """Load ``model``'s GGUF with llama.cpp (every CPU thread unless ``DEEPAPPS_THREADS`` says
    otherwise; all layers on the GPU when ``device`` is one and the build supports it)."""
    import llama_cpp

    from deepapps.runtime.threads import thread_count

    gguf = model_gguf(model)
    assert gguf is not None, "choose_engine only picks llama.cpp for a GGUF model"
    threads = thread_count()
    try:
        with _extra_buffers(extra_buffers_allowed()):
            llm = llama_cpp.Llama(
                model_path=str(gguf),
                n_ctx=context_window or 0,  # 0: the model's own training context
                n_batch=PROMPT_BATCH,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=0 if device == "cpu" else -1,
                verbose=False,
            )
    except (ValueError, RuntimeError, OSError) as exc:
        raise InputError(
            f"llama.cpp cannot load {gguf} ({str(exc).splitlines()[0][:200]}): it must be a complete GGUF "
            f"of a model architecture llama-cpp-python {llama_cpp.__version__} supports; "
            "re-download it, or try --engine transformers"
        ) from exc
    name = model.name if model.kind == "registered" else Path(gguf).name
    return LlamaCppEngine(llm, name, str(gguf), threads, context_window)


def extra_buffers_allowed() -> bool:
    """Whether llama.cpp may use its extra buffer types (AMX, repacking); see the module docstring."""
    flag = os.environ.get(EXTRA_BUFFERS_ENV, "").strip().lower()
    if flag in {"1", "true", "yes"}:
        return True
    if flag in {"0", "false", "no"}:
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return True
    return "amx_tile" not in flags.split()


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _extra_buffers(allowed: bool) -> Iterator[None]:
    """While ``Llama(...)`` loads, its model parameters get ``use_extra_bufts = allowed``
    (llama-cpp-python has no argument for it)."""
    if allowed:
        yield
        return
    import llama_cpp.llama_cpp as raw

    original = raw.llama_model_default_params

    def params() -> Any:
        p = original()
        p.use_extra_bufts = False
        return p

    with _PARAMS_LOCK:
        raw.llama_model_default_params = params
        try:
            yield
        finally:
            raw.llama_model_default_params = original
