"""deepapps_nlp: chat with language models, offline, plus an OpenAI-compatible server.

Hooks live in :mod:`deepapps_nlp.plugin`. The public API is imported lazily so that
``import deepapps_nlp`` stays free of torch and transformers::

    from deepapps_nlp import Chat, ConversationStore, DocIndex
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "Chat", "ChatResult", "ChatStream", "ConversationStore", "DocIndex", "SamplingParams"]

_LAZY = {
    "Chat": "deepapps_nlp.chat",
    "ChatResult": "deepapps_nlp.chat",
    "ChatStream": "deepapps_nlp.chat",
    "SamplingParams": "deepapps_nlp.chat",
    "PRESETS": "deepapps_nlp.chat",
    "ConversationStore": "deepapps_nlp.store",
    "DocIndex": "deepapps_nlp.retrieval",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepapps_nlp' has no attribute {name!r}")
