"""deepapps_nlp: chat with language models, offline, plus an OpenAI-compatible server.

Hooks live in :mod:`deepapps_nlp.plugin`. The public API is imported lazily so that
``import deepapps_nlp`` stays free of torch and transformers::

    from deepapps_nlp import Chat, ConversationStore, DocIndex
"""

from __future__ import annotations

from deepapps.lazy import lazy_exports

__all__ = ["PRESETS", "Chat", "ChatResult", "ChatStream", "ConversationStore", "DocIndex", "SamplingParams"]

_LAZY = {
    "Chat": "deepapps_nlp.chat",
    "ChatResult": "deepapps_nlp.chat",
    "ChatStream": "deepapps_nlp.chat",
    "SamplingParams": "deepapps_nlp.chat",
    "PRESETS": "deepapps_nlp.presets",
    "ConversationStore": "deepapps_nlp.store",
    "DocIndex": "deepapps_nlp.retrieval",
}

__getattr__ = lazy_exports(__name__, _LAZY)
