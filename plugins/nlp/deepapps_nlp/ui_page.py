"""The Chat page of the deepapps Streamlit app: streamed replies, presets, sampling controls,
documents upload for retrieval, and the stored conversation list.

The model comes from the shared model picker (the chat task's registered models, or a folder /
``.gguf`` path); ``DEEPAPPS_CHAT_MODEL`` preselects a path. It is loaded once per process on the
sidebar's device through the shared cached runner, on the engine chosen in the sidebar (the
declared ``engine`` option: auto, llama.cpp or transformers; the caption says which one runs);
the sampling controls take their ranges and defaults from the task's declared options.
"""

from __future__ import annotations

import os
from typing import Any

MODEL_KEY = "chat-model"


def _pick_model() -> str | None:
    """The shared model picker; ``DEEPAPPS_CHAT_MODEL`` (a name or path) preselects the model."""
    import streamlit as st

    from deepapps.registry import registry
    from deepapps_ui import widgets

    wanted = os.environ.get("DEEPAPPS_CHAT_MODEL", "").strip()
    if wanted and MODEL_KEY not in st.session_state:
        registered = wanted in {m.name for m in registry.models("chat")}
        st.session_state[MODEL_KEY] = wanted if registered else widgets.OTHER_MODEL
        if not registered:
            st.session_state[f"{MODEL_KEY}-other"] = wanted
    return widgets.model_picker("chat", key=MODEL_KEY)


def _pick_engine() -> str:
    """The declared ``engine`` load option as a select box (auto: llama.cpp for a GGUF when installed)."""
    import streamlit as st

    from deepapps.registry import registry

    opt = next(o for o in registry.task("chat").options if o.name == "engine")
    choices = list(opt.choices)
    return st.selectbox("Engine", choices, index=choices.index(opt.default), key="chat-engine", help=opt.help)


def _call_options() -> dict[str, Any]:
    """Per-reply options from the sidebar, with the declared ranges, defaults and help."""
    import streamlit as st

    from deepapps.registry import registry
    from deepapps_ui import widgets

    from .presets import PRESETS

    opts = {o.name: o for o in registry.task("chat").options}
    t, p, m = opts["temperature"], opts["top_p"], opts["max_tokens"]
    values = {
        "preset": st.selectbox("Preset", list(PRESETS), key="chat-preset", help=opts["preset"].help),
        "temperature": st.slider(
            "Temperature",
            float(t.min),
            float(t.max),
            float(t.default),
            0.05,
            key="chat-temperature",
            help=t.help,
        ),
        "top_p": st.slider(
            "Top-p", float(p.min), float(p.max), float(p.default), 0.05, key="chat-top-p", help=p.help
        ),
        "max_tokens": int(
            st.number_input(
                "Max tokens", min_value=1, value=m.default, step=16, key="chat-max-tokens", help=m.help
            )
        ),
        "seed": widgets.option_widget(opts["seed"], key="chat-seed"),
        "stop": widgets.option_widget(opts["stop"], key="chat-stop"),
    }
    return {k: v for k, v in values.items() if v is not None}


def _documents() -> Any:
    """A DocIndex of the uploaded files (``None`` without uploads)."""
    import streamlit as st

    from deepapps import DeepAppsError

    from .plugin import RETRIEVERS
    from .retrieval import DocIndex

    st.subheader("Documents")
    uploads = st.file_uploader(
        "Answer from these files", type=["txt", "md", "csv", "json", "html"], accept_multiple_files=True
    )
    retriever = st.selectbox(
        "Search documents with",
        list(RETRIEVERS),
        help="embed/hybrid use all-MiniLM-L6-v2: `deepapps pull minilm-l6-v2`",
    )
    if not uploads:
        return None
    texts = {f.name: f.getvalue().decode("utf-8", errors="replace") for f in uploads}
    try:
        index = DocIndex.from_texts(texts, retriever=retriever)
    except DeepAppsError as exc:
        st.warning(f"{exc}; using BM25")
        index, retriever = DocIndex.from_texts(texts), "bm25"
    st.caption(f"{len(index)} chunks from {len(texts)} file(s) indexed ({retriever})")
    return index


def _conversation_list(store: Any) -> None:
    """New conversation, and the stored ones to open or delete."""
    import streamlit as st

    state = st.session_state
    st.subheader("Conversations")
    if st.button("New conversation", use_container_width=True):
        state.chat_conversation = None
    for conv in store.list(limit=30):
        cols = st.columns([5, 1])
        label = ("▶ " if conv.id == state.chat_conversation else "") + conv.title[:40]
        if cols[0].button(label, key=f"open-{conv.id}", use_container_width=True):
            state.chat_conversation = conv.id
        if cols[1].button("🗑", key=f"del-{conv.id}", help="Delete"):
            store.delete(conv.id)
            if state.chat_conversation == conv.id:
                state.chat_conversation = None
            st.rerun()


def _load_chat(model: str | None, engine: str = "auto") -> Any:
    """The shared cached runner on the sidebar's device, or ``None`` (with the reason shown)."""
    import streamlit as st

    from deepapps import DeepAppsError, ModelNotAvailableError
    from deepapps.registry import registry
    from deepapps_ui import widgets

    if model is None:
        st.info("Type the path of a model folder or .gguf file in the sidebar.")
        return None
    try:
        return widgets.cached_runner("chat", model, engine=engine)
    except ModelNotAvailableError as exc:
        st.warning(str(exc))
        registered = {m.name: m for m in registry.models("chat")}
        if model in registered:  # a registered model that is not pulled yet: offer to pull it
            widgets.pull_button(registered[model], key="chat-pull")
    except DeepAppsError as exc:
        st.error(f"Cannot load the model: {exc}")
    return None


def _show_history(store: Any, conversation_id: str | None) -> None:
    import streamlit as st

    for m in store.get(conversation_id).messages if conversation_id else []:
        with st.chat_message(m["role"]):
            st.markdown(m["content"])
            if m.get("citations"):
                st.caption(" · ".join(f"[{c['n']}] {c['source']}#{c['chunk']}" for c in m["citations"]))


def _reply(chat: Any, store: Any, prompt: str, options: dict[str, Any]) -> None:
    """Stream the assistant's reply to ``prompt`` into the page; the exchange is stored."""
    import streamlit as st

    from deepapps import DeepAppsError
    from deepapps_ui import widgets

    state = st.session_state
    with st.chat_message("user"):
        st.markdown(prompt)
    try:
        stream = chat.ask(prompt, conversation_id=state.chat_conversation, store=store, **options)
    except DeepAppsError as exc:
        st.error(str(exc))
        return
    with st.chat_message("assistant"):
        st.write_stream(iter(stream))
        result = stream.result
        if result.citations:
            st.caption(" · ".join(f"[{c['n']}] {c['source']}#{c['chunk']}" for c in result.citations))
        st.caption(
            f"{result.prompt_tokens} prompt + {result.completion_tokens} completion tokens · "
            f"first token {result.time_to_first_token_ms:.0f} ms · {result.finish_reason}"
        )
        with st.expander("Details"):
            widgets.result_view(result, key="chat-result")
    state.chat_conversation = result.conversation_id


def render() -> None:
    """Draw the page (called by the deepapps UI, or by ``AppTest``)."""
    import streamlit as st

    from .store import ConversationStore

    st.title("💬 Chat")
    store = ConversationStore()
    st.session_state.setdefault("chat_conversation", None)
    with st.sidebar:
        st.subheader("Model and style")
        model = _pick_model()
        engine = _pick_engine()
        options = _call_options()
        index = _documents()
        _conversation_list(store)
    chat = _load_chat(model, engine)
    if chat is None:
        return
    if index is not None:
        chat = chat.with_docs(index)
    loaded = chat.loaded
    st.caption(
        f"{loaded.name} · {loaded.params / 1e6:.0f}M parameters · context {loaded.context_window} tokens · "
        f"engine {chat.engine} ({loaded.describe()['weights']}) · {chat.device}"
    )
    _show_history(store, st.session_state.chat_conversation)
    prompt = st.chat_input("Ask anything")
    if prompt:
        _reply(chat, store, prompt, options)
