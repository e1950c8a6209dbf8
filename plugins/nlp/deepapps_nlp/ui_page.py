"""The Chat page of the deepapps Streamlit app: streamed replies, presets, sampling controls,
documents upload for retrieval, and the stored conversation list.

The model is ``DEEPAPPS_CHAT_MODEL`` when set (a name, folder or .gguf), else the task's
default (``smollm2-135m-instruct``, after ``deepapps pull smollm2-135m-instruct``).
"""

from __future__ import annotations

import os
from typing import Any


def _load(model: str) -> Any:
    import streamlit as st

    @st.cache_resource(show_spinner="Loading the model ...")
    def load(name: str):
        import deepapps

        from .models import get_model

        _, spec = deepapps.resolve_model("chat", name or None)
        return spec, get_model(spec, "cpu")

    return load(model)


def render() -> None:
    """Draw the page (called by the deepapps UI, or by ``AppTest``)."""
    import streamlit as st

    from deepapps import DeepAppsError

    from .chat import PRESETS, Chat
    from .retrieval import DocIndex
    from .store import ConversationStore

    st.title("💬 Chat")
    store = ConversationStore()
    state = st.session_state
    state.setdefault("chat_conversation", None)

    with st.sidebar:
        st.subheader("Model and style")
        model = st.text_input(
            "Model",
            value=os.environ.get("DEEPAPPS_CHAT_MODEL", ""),
            placeholder="smollm2-135m-instruct",
            help="Registered name, local folder or .gguf",
        )
        preset = st.selectbox(
            "Preset",
            list(PRESETS),
            index=0,
            help="System prompt for programming help, tutoring, content or customer service",
        )
        temperature = st.slider("Temperature", 0.0, 1.5, 0.7, 0.05, help="0 = greedy (deterministic)")
        top_p = st.slider("Top-p", 0.05, 1.0, 0.9, 0.05)
        max_tokens = st.number_input("Max tokens", 1, 2048, 256, 16)
        seed_text = st.text_input("Seed (optional)", "")
        stop_text = st.text_input("Stop strings (comma-separated)", "")
        st.subheader("Documents")
        uploads = st.file_uploader(
            "Answer from these files", type=["txt", "md", "csv", "json", "html"], accept_multiple_files=True
        )
        retriever = st.selectbox(
            "Search documents with",
            ["bm25", "embed", "hybrid"],
            help="embed/hybrid use all-MiniLM-L6-v2: `deepapps pull minilm-l6-v2`",
        )
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

    try:
        spec, loaded = _load(model.strip())
    except DeepAppsError as exc:
        st.warning(f"{exc}")
        st.code("deepapps pull smollm2-135m-instruct", language="bash")
        return
    index = None
    if uploads:
        texts = {f.name: f.getvalue().decode("utf-8", errors="replace") for f in uploads}
        try:
            index = DocIndex.from_texts(texts, retriever=retriever)
        except DeepAppsError as exc:
            st.sidebar.warning(f"{exc}; using BM25")
            index = DocIndex.from_texts(texts)
        st.sidebar.caption(f"{len(index)} chunks from {len(texts)} file(s) indexed (BM25)")
    chat = Chat(spec, "cpu", preset=preset, docs=index)
    st.caption(
        f"{loaded.name} · {loaded.params / 1e6:.0f}M parameters · context {loaded.context_window} tokens"
    )

    history = store.get(state.chat_conversation).messages if state.chat_conversation else []
    for m in history:
        with st.chat_message(m["role"]):
            st.markdown(m["content"])
            if m.get("citations"):
                st.caption(" · ".join(f"[{c['n']}] {c['source']}#{c['chunk']}" for c in m["citations"]))

    prompt = st.chat_input("Ask anything")
    if not prompt:
        return
    with st.chat_message("user"):
        st.markdown(prompt)
    options: dict[str, Any] = {
        "temperature": float(temperature),
        "top_p": float(top_p),
        "max_tokens": int(max_tokens),
    }
    if seed_text.strip().lstrip("-").isdigit():
        options["seed"] = int(seed_text)
    stops = [s for s in (x.strip() for x in stop_text.split(",")) if s]
    if stops:
        options["stop"] = stops
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
    state.chat_conversation = result.conversation_id
