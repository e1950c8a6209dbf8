"""`deepapps chat ...` commands. Only click is imported at module level; models load inside commands.

deepapps chat ask "How do I reverse a list in Python?" --preset programming
deepapps chat ask "And a tuple?" --continue            # resume the last conversation
deepapps chat ask "Can I return shoes?" --docs ./faq  # answer from documents, with citations
deepapps chat shell                                     # interactive
deepapps chat serve --port 8000 --api-key sk-local     # OpenAI-compatible server
deepapps chat list | show ID | delete ID | presets
"""

from __future__ import annotations

import json
import sys

import click


def _sampling_options(f):
    options = [
        click.option(
            "--model", "-m", default=None, help="Registered model, local folder, .gguf file or hub id."
        ),
        click.option("--device", "-d", default="auto", show_default=True),
        click.option(
            "--preset",
            "-p",
            default=None,
            help="programming, tutoring, content, customer-service, assistant.",
        ),
        click.option("--system", default=None, help="A system prompt (overrides the preset)."),
        click.option("--temperature", "-t", type=float, default=None, help="0 = greedy; default 0.7."),
        click.option("--top-p", type=float, default=None, help="Nucleus sampling mass; default 0.9."),
        click.option("--max-tokens", type=int, default=None, help="Most tokens to generate; default 256."),
        click.option("--stop", multiple=True, help="Stop string (repeatable)."),
        click.option("--seed", type=int, default=None, help="Seed for reproducible sampling."),
        click.option(
            "--docs", default=None, type=click.Path(exists=True), help="Answer from these documents."
        ),
        click.option(
            "--retriever",
            type=click.Choice(["bm25", "embed", "hybrid"]),
            default="bm25",
            show_default=True,
            help="How --docs are searched (embed, hybrid: run `deepapps pull minilm-l6-v2` first).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _make_chat(model, device, preset, docs, retriever="bm25", **sampling):
    from deepapps.runtime import select_device

    from .chat import Chat

    defaults = {k: v for k, v in sampling.items() if v not in (None, ())}
    if "stop" in defaults:
        defaults["stop"] = tuple(defaults["stop"])
    return Chat(model, select_device(device), preset=preset, docs=docs, retriever=retriever, **defaults)


@click.group(name="chat")
def chat_group() -> None:
    """Chat with a language model: ask, shell, serve an OpenAI-compatible API, manage conversations."""


@chat_group.command()
@click.argument("message", nargs=-1, required=True)
@_sampling_options
@click.option("--conversation", "-c", "conversation", default=None, help="Continue this conversation id.")
@click.option("--continue", "continue_last", is_flag=True, help="Continue the most recent conversation.")
@click.option("--no-save", is_flag=True, help="Do not store this exchange.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (the result) instead of streaming."
)
def ask(
    message,
    model,
    device,
    preset,
    system,
    temperature,
    top_p,
    max_tokens,
    stop,
    seed,
    docs,
    retriever,
    conversation,
    continue_last,
    no_save,
    as_json,
) -> None:
    """Ask MESSAGE and stream the reply; the exchange is saved as a conversation."""
    from .store import ConversationStore

    chat = _make_chat(
        model,
        device,
        preset,
        docs,
        retriever,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=stop,
        seed=seed,
    )
    text = " ".join(message)
    options = {"system": system} if system else {}
    if no_save:
        stream = chat.stream_reply(text, **options)
    else:
        store = ConversationStore()
        if continue_last and not conversation:
            recent = store.list(limit=1)
            conversation = recent[0].id if recent else None
        stream = chat.ask(text, conversation_id=conversation, store=store, **options)
    for piece in stream:
        if not as_json:
            click.echo(piece, nl=False)
            sys.stdout.flush()
    result = stream.result
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo()
    for c in result.citations:
        click.secho(f"[{c['n']}] {c['source']} (chunk {c['chunk']})", fg="cyan", err=True)
    click.secho(
        f"[{result.prompt_tokens} prompt + {result.completion_tokens} completion tokens, {result.finish_reason}, "
        f"first token {result.time_to_first_token_ms:.0f} ms"
        + (f", {result.tokens_per_second:.1f} tok/s" if result.tokens_per_second else "")
        + (f", conversation {result.conversation_id}]" if result.conversation_id else "]"),
        fg="bright_black",
        err=True,
    )


@chat_group.command()
@_sampling_options
@click.option("--conversation", "-c", default=None, help="Resume this conversation id.")
def shell(
    model, device, preset, system, temperature, top_p, max_tokens, stop, seed, docs, retriever, conversation
) -> None:
    """An interactive chat in the terminal (empty line or Ctrl-D to quit)."""
    from .store import ConversationStore

    chat = _make_chat(
        model,
        device,
        preset,
        docs,
        retriever,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=stop,
        seed=seed,
    )
    store = ConversationStore()
    cid = store.resolve(conversation) if conversation else None
    click.secho(f"{chat.model_name} ({chat.preset or 'assistant'}); empty line to quit", fg="bright_black")
    options = {"system": system} if system else {}
    while True:
        try:
            text = input("> ").strip()
        except EOFError:
            break
        if not text:
            break
        stream = chat.ask(text, conversation_id=cid, store=store, **options)
        for piece in stream:
            click.echo(piece, nl=False)
            sys.stdout.flush()
        click.echo()
        cid = stream.result.conversation_id
    if cid:
        click.secho(f"conversation {cid}", fg="bright_black")


# `chat serve` limits: option -> (ServerLimits field, help). Only given ones are passed on; the
# defaults quoted in the help are ServerLimits' (tests/nlp/test_server_security.py checks them).
_SERVE_LIMITS = {
    "--max-queue": ("max_queue", "Requests that may wait behind the one served; more get 429 (default 64)."),
    "--max-body-bytes": ("max_body_bytes", "Largest request body; larger gets 413 (default 1048576)."),
    "--max-messages": ("max_messages", "Most messages in one request (default 256)."),
    "--max-message-chars": ("max_message_chars", "Most characters in one message (default 65536)."),
    "--max-stop": ("max_stop", "Most stop strings in one request (default 4)."),
    "--max-stop-chars": ("max_stop_chars", "Longest stop string (default 128)."),
    "--max-json-depth": ("max_json_depth", "Deepest JSON nesting accepted (default 32)."),
    "--max-tokens-limit": ("max_tokens", "Largest max_tokens a request may ask (default: context window)."),
}


def _limit_options(f):
    for flag, (dest, text) in reversed(_SERVE_LIMITS.items()):
        f = click.option(flag, dest, type=int, default=None, help=text)(f)
    return f


@chat_group.command()
@click.option("--model", "-m", default=None, help="Registered model, local folder, .gguf file or hub id.")
@click.option("--device", "-d", default="auto", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--api-key", default=None, envvar="DEEPAPPS_API_KEY", help="Require 'Authorization: Bearer KEY'."
)
@click.option(
    "--insecure", is_flag=True, help="Allow a non-loopback --host without --api-key (anyone can use it)."
)
@_limit_options
@click.option("--preset", "-p", default=None, help="Default system prompt when a request has none.")
@click.option("--docs", default=None, type=click.Path(exists=True), help="Answer from these documents.")
@click.option(
    "--retriever", type=click.Choice(["bm25", "embed", "hybrid"]), default="bm25", show_default=True
)
def serve(model, device, host, port, api_key, insecure, preset, docs, retriever, **limits) -> None:
    """Serve an OpenAI-compatible API: /v1/models and /v1/chat/completions (SSE streaming)."""
    from .server import ServerLimits, check_bind, resolve_api_key
    from .server import serve as run_server

    bounds = ServerLimits(**{k: v for k, v in limits.items() if v is not None})
    api_key = resolve_api_key(api_key)
    if not insecure:  # refuse an open bind before the model loads (serve() warns if insecure)
        check_bind(host, api_key, insecure=False)
    chat = _make_chat(model, device, preset, docs, retriever)
    auth = "API key required" if api_key else "no API key"
    click.secho(
        f"serving {chat.model_name} on http://{host}:{port}/v1 ({auth}; Ctrl-C to stop)", fg="green", err=True
    )
    run_server(chat, host=host, port=port, api_key=api_key, limits=bounds, insecure=insecure)


@chat_group.command(name="list")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_(limit, as_json) -> None:
    """Stored conversations, most recent first."""
    import datetime

    from .store import ConversationStore

    rows = ConversationStore().list(limit=limit)
    if as_json:
        click.echo(json.dumps([{k: v for k, v in r.to_dict().items() if k != "messages"} for r in rows]))
        return
    if not rows:
        click.echo('No conversations yet: `deepapps chat ask "..."` starts one.')
    for r in rows:
        when = datetime.datetime.fromtimestamp(r.updated).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{r.id}  {when}  {r.n_messages:>3} msgs  {r.title}")


@chat_group.command()
@click.argument("conversation_id")
@click.option("--json", "as_json", is_flag=True)
def show(conversation_id, as_json) -> None:
    """Print a stored conversation."""
    from .store import ConversationStore

    conv = ConversationStore().get(conversation_id)
    if as_json:
        click.echo(json.dumps(conv.to_dict()))
        return
    click.secho(f"{conv.id}: {conv.title} ({conv.model}, {conv.preset or 'assistant'})", bold=True)
    for m in conv.messages:
        click.secho(f"{m['role']}:", fg="cyan")
        click.echo(m["content"])


@chat_group.command()
@click.argument("conversation_id")
def delete(conversation_id) -> None:
    """Delete a stored conversation."""
    from .store import ConversationStore

    store = ConversationStore()
    cid = store.resolve(conversation_id)
    store.delete(cid)
    click.echo(f"deleted {cid}")


@chat_group.command()
@click.option("--json", "as_json", is_flag=True)
def presets(as_json) -> None:
    """The system-prompt presets."""
    from .chat import PRESETS

    if as_json:
        click.echo(json.dumps(PRESETS))
        return
    for name, text in PRESETS.items():
        click.echo(f"{name:<18} {text}")
