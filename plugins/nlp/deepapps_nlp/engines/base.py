"""The engine protocol: what the ``Chat`` class needs from whatever runs the model.

``Chat`` does everything else (presets, retrieval, history trimming, stop strings, streaming,
token counts, results) once, on top of these methods, so both engines behave the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from deepapps import InputError


class ChatEngine(Protocol):
    """A loaded chat model behind one engine (``transformers`` or ``llama.cpp``)."""

    engine: str  # "transformers" | "llama.cpp"
    name: str  # the model's display name
    path: str  # the folder, .gguf file or hub id that was loaded
    device: str
    context_window: int
    default_template: bool  # True when the ChatML fallback template is used
    lock: threading.Lock  # one generation at a time on this model

    @property
    def params(self) -> int: ...

    @property
    def has_template(self) -> bool:
        """Whether the model has a chat template (its own, or the ChatML fallback)."""

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text of ``messages`` through the model's chat template."""

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (special-token markup in it is parsed; no BOS added)."""

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of each text."""

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, special tokens left out (an incomplete UTF-8 tail shows as U+FFFD)."""

    def eos_ids(self) -> list[int]:
        """Token ids that end a reply."""

    def decode(self, prep: dict[str, Any], cancel: threading.Event | None = None) -> Iterator[int]:
        """New token ids for a prepared prompt, one per step, in the calling thread; stops at the
        end-of-sequence token (yielded last), ``prep["max_new"]`` tokens, or ``cancel``."""

    def describe(self) -> dict[str, Any]:
        """What runs: engine, library version, weights format; for results and model cards."""


# ChatML, the format SmolLM2, Qwen and many others use; only for models whose vocabulary has its
# markers (<|im_start|>, <|im_end|>) but that carry no chat template
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHATML_MARKERS = ("<|im_start|>", "<|im_end|>")


def no_template_error(name: str) -> InputError:
    return InputError(
        f"model {name!r} has no chat template and its vocabulary has no ChatML markers, so there is no "
        "way to format a conversation for it; use an instruction-tuned (chat) model"
    )


def compile_template(source: str) -> Any:
    """A Jinja chat template compiled the way transformers' ``apply_chat_template`` does
    (sandboxed, ``trim_blocks``/``lstrip_blocks``, loop controls, ``raise_exception``), so both
    engines render the same prompt text from the same template."""
    import json
    from datetime import datetime

    from jinja2.exceptions import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:  # fmt: skip
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)  # fmt: skip

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


def render_template(template: Any, messages: list[dict[str, str]], add_generation_prompt: bool,
                    special: dict[str, str]) -> str:  # fmt: skip
    """Render a compiled chat template; a template that refuses the messages is a one-line InputError."""
    from jinja2.exceptions import TemplateError

    try:
        return template.render(messages=messages, add_generation_prompt=add_generation_prompt, **special)
    except TemplateError as exc:
        raise InputError(f"the model's chat template refused these messages: {exc}") from exc
