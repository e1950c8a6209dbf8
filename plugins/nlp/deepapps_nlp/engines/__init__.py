"""What runs a chat model: the ``engine`` load option of the chat task.

- ``llama.cpp`` (:mod:`.llamacpp`): a GGUF file as shipped (quantised), through
  ``llama-cpp-python`` (the ``chat-fast`` extra; it builds from source). On CPU it decodes
  several times faster than transformers on the same model.
- ``transformers`` (:mod:`.hf`): any Hugging Face causal LM (a folder, a hub id, or a GGUF that is
  dequantised: once into ``<model dir>/hf`` for a pulled model, else at every load).
- ``auto`` (the default): llama.cpp for a GGUF model when ``llama_cpp`` is importable (and can run
  on the chosen device), else transformers.

Both engines implement :class:`~.base.ChatEngine`: the ``Chat`` class renders, tokenises,
trims, streams and applies stop strings the same way whichever one decodes. Nothing heavy is
imported here: choosing an engine is cheap and happens before any model loads.
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
from pathlib import Path
from typing import Any

from deepapps import InputError

from ..plugin import ENGINE, ENGINES

LLAMA_CPP = "llama.cpp"
TRANSFORMERS = "transformers"
LLAMA_CPP_EXTRA = "chat-fast"
CONVERTED_DIR = "hf"  # where a pulled GGUF is dequantised for the transformers engine

__all__ = ["ENGINES", "choose_engine", "gguf_file", "llama_cpp_available", "load_engine", "require_llama_cpp"]


def llama_cpp_available() -> bool:
    """Whether ``llama_cpp`` can be imported (checked without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def require_llama_cpp() -> None:
    """A one-line error naming the extra when ``llama-cpp-python`` is not installed."""
    if not llama_cpp_available():
        raise InputError(
            f"--engine llama.cpp needs the llama-cpp-python package: pip install 'deepapps[{LLAMA_CPP_EXTRA}]' "
            "(it builds from source, about 8 minutes on 2 cores, with cmake and a C++ compiler); "
            "or use --engine transformers"
        )


def gguf_file(path: Any) -> Path | None:
    """The GGUF file a model path stands for: the ``.gguf`` itself, a pulled model's converted
    ``hf`` folder (its GGUF lies beside it), or a folder holding one ``.gguf`` and no
    ``config.json``; ``None`` for a transformers folder."""
    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        return path if path.suffix.lower() == ".gguf" else None
    if not path.is_dir():
        return None
    if path.name == CONVERTED_DIR:
        beside = sorted(path.parent.glob("*.gguf"))
        if len(beside) == 1:
            return beside[0]
    if not (path / "config.json").exists():
        inside = sorted(path.glob("*.gguf"))
        if len(inside) == 1:
            return inside[0]
    return None


def model_gguf(model: Any) -> Path | None:
    """:func:`gguf_file` of a resolved ``ModelRef`` (a hub id has none)."""
    if model.kind == "hub":
        return None
    return gguf_file(model.path)


def choose_engine(requested: str | None, model: Any, device: str) -> str:
    """The engine that runs ``model`` on ``device`` for ``--engine requested`` (cheap: no loading)."""
    requested = requested or ENGINE
    if requested not in ENGINES:
        raise InputError(f"option --engine: {requested!r} is not one of {', '.join(ENGINES)}")
    if requested == TRANSFORMERS:
        return TRANSFORMERS
    gguf = model_gguf(model)
    if requested == LLAMA_CPP:
        require_llama_cpp()
        if gguf is None:
            raise InputError(
                f"--engine llama.cpp runs GGUF files and {model.name!r} is not one; pass a .gguf file "
                "or use --engine transformers"
            )
        if not _runs_on(device):
            raise InputError(
                f"this llama-cpp-python build runs on the CPU only, not on {device}; use --device cpu, "
                "--engine transformers, or a llama-cpp-python built with GPU support"
            )
        return LLAMA_CPP
    if gguf is not None and llama_cpp_available() and _runs_on(device):
        return LLAMA_CPP
    return TRANSFORMERS


def _runs_on(device: str) -> bool:
    if device == "cpu":
        return True
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


_CACHE: dict[tuple, Any] = {}
_CACHE_LOCK = threading.Lock()


def load_engine(
    model: Any, device: str, precision: str, context_window: int | None = None, engine: str | None = None
) -> Any:
    """The loaded :class:`~.base.ChatEngine` for ``model``, memoised per (model, device,
    precision, context window, engine): chats that differ only in documents or defaults share it."""
    name = choose_engine(engine, model, device)
    if name == TRANSFORMERS:
        from ..models import get_model

        return get_model(model, device, precision, context_window)
    key = (model.key, device, precision, context_window, name)
    with _CACHE_LOCK:
        if key not in _CACHE:
            from .llamacpp import load_llama_cpp

            if not _CACHE:
                atexit.register(_close_all)
            _CACHE[key] = load_llama_cpp(model, device, context_window)
        return _CACHE[key]


def _close_all() -> None:
    """Free llama.cpp models before the interpreter tears its modules down (llama-cpp-python's
    finalisers fail noisily when they run after that)."""
    for engine in _CACHE.values():
        engine.llm.close()
    _CACHE.clear()
