"""The transformers engine: any Hugging Face causal LM, decoded token by token with its KV cache.

:class:`TransformersEngine` is the :class:`~deepapps_nlp.models.LoadedModel` that
:func:`deepapps_nlp.models.load_model` returns (code generation uses the same object for its
batched sampler), with the :class:`~.base.ChatEngine` methods the ``Chat`` class calls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..models import LoadedModel


@dataclass
class TransformersEngine(LoadedModel):
    """A transformers model + tokenizer that can render, tokenise and decode chat prompts."""

    engine = "transformers"

    @property
    def has_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def eos_ids(self) -> list[int]:
        """The tokenizer's end token and ChatML's ``<|im_end|>``."""
        tok = self.tokenizer
        eos = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        im_end = tok.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != tok.unk_token_id:
            eos.add(im_end)
        return sorted(eos)

    def describe(self) -> dict[str, Any]:
        import transformers

        dtype = next(self.model.parameters()).dtype
        return {"engine": self.engine, "version": transformers.__version__, "weights": str(dtype)}

    def generation_kwargs(self, prep: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``model.generate`` (also used by the raw baseline in benchmarks)."""
        p = prep["params"]
        tok = self.tokenizer
        eos = self.eos_ids()
        kwargs: dict[str, Any] = {
            "max_new_tokens": prep["max_new"],
            "min_new_tokens": min(p.min_tokens, prep["max_new"]) or None,
            "eos_token_id": eos or None,
            "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else (eos or [0])[0],
            "repetition_penalty": p.repetition_penalty if p.repetition_penalty != 1.0 else None,
        }
        if p.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=float(p.temperature), top_p=float(p.top_p), top_k=0)
        return {k: v for k, v in kwargs.items() if v is not None or k in ("temperature", "top_p", "top_k")}

    def decode(self, prep: dict[str, Any], cancel: threading.Event | None = None) -> Iterator[int]:
        """The same decoding as ``model.generate(**generation_kwargs(prep))`` (greedy at
        temperature 0, else temperature + top-p sampling; repetition penalty; no end-of-sequence
        before ``min_tokens``), written as a loop over the model with its KV cache so that each
        token reaches the caller as soon as it exists, without a streaming thread. A ``seed``
        seeds a generator of this reply only (the process's random state is left alone)."""
        import torch

        p = prep["params"]
        max_new = prep["max_new"]
        eos_ids = self.eos_ids()
        min_new = min(p.min_tokens, max_new)
        processors = logits_processors(p)
        generator = None if p.greedy else seeded_generator(p.seed, self.device)
        seq = torch.tensor([prep["input_ids"]], dtype=torch.long, device=self.device)
        cache_kw = self.forward_args["cache"]
        with torch.inference_mode():
            # the prompt: only the last position's logits are needed (as generate() does)
            out = self.model(input_ids=seq, use_cache=True, **self.forward_args["prompt"])
            for step in range(max_new):
                if cancel is not None and cancel.is_set():
                    return
                logits = out.logits[:, -1, :].to(dtype=torch.float32)
                if step < min_new and eos_ids:
                    logits[:, eos_ids] = float("-inf")
                if processors:
                    logits = processors(seq, logits)
                nxt = pick_token(logits, p.greedy, generator)
                token = int(nxt)
                yield token
                if token in eos_ids or step + 1 == max_new:
                    return
                if processors:
                    seq = torch.cat([seq, nxt], dim=1)
                out = self.model(input_ids=nxt, use_cache=True, **{cache_kw: out[cache_kw]})


def logits_processors(p: Any) -> Any:
    """generate()'s processors for ``p``: repetition penalty, then temperature and top-p when sampling."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList()
    if p.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(p.repetition_penalty))
    if not p.greedy:
        processors.append(TemperatureLogitsWarper(float(p.temperature)))
        if p.top_p < 1:
            processors.append(TopPLogitsWarper(float(p.top_p)))
    return processors


def seeded_generator(seed: int | None, device: str) -> Any:
    """A random generator for one reply (None: the process's own random state)."""
    if seed is None:
        return None
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(seed % 2**64)  # any integer seed; torch takes 64-bit unsigned ones
    return generator


def pick_token(logits: Any, greedy: bool, generator: Any) -> Any:
    import torch

    if greedy:
        return torch.argmax(logits, dim=-1, keepdim=True)
    return torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1, generator=generator)
