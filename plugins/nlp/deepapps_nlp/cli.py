"""`deepapps chat ...` commands. Only click is imported at module level; models load inside commands.

deepapps chat ask "How do I reverse a list in Python?" --preset programming
deepapps chat ask "And a tuple?" --continue            # resume the last conversation
deepapps chat ask "Can I return shoes?" --docs ./faq  # answer from documents, with citations
deepapps chat shell                                     # interactive
deepapps chat serve --port 8000 --api-key sk-local     # OpenAI-compatible server
deepapps chat list | show ID | delete ID | presets

The model options (``--temperature``, ``--docs``, ...) are the chat task's declared run options,
with the same names, types, ranges and defaults as ``deepapps run chat`` (``deepapps options
chat``). Every command checks its message, options, conversation id and model name before a
model loads, so a mistake is reported in milliseconds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from .plugin import RUN_OPTIONS

SHORT_FLAGS = {"preset": "-p", "temperature": "-t"}


def _declared_options(f):
    """One click option per declared chat run option. Values stay text here: the declaration
    parses and checks them (one message format with ``deepapps run chat``)."""
    for opt in reversed(RUN_OPTIONS):
        names = [opt.flag, *([SHORT_FLAGS[opt.name]] if opt.name in SHORT_FLAGS else [])]
        default = "" if opt.default is None else f" [default: {opt.default}]"
        text = opt.help + default + (" (repeatable)" if opt.multiple else "")
        f = click.option(*names, opt.name, default=None, multiple=opt.multiple, metavar=opt.type.upper() if opt.multiple else opt.describe_type().upper(),
                         help=text)(f)  # fmt: skip
    f = click.option("--precision", default="auto", show_default=True, help="auto, fp32 or bf16.")(f)
    f = click.option(
        "--device", "-d", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."
    )(f)
    return click.option(
        "--model", "-m", default=None, help="Registered model or alias, local folder, .gguf file or hub id."
    )(f)


def _checked(declared: dict[str, Any], where: str) -> dict[str, Any]:
    """The given declared options, parsed and checked (cross-option rules too), before any load."""
    from deepapps.options import check_options

    from .plugin import check_run_options

    given = {k: (list(v) if isinstance(v, tuple) else v) for k, v in declared.items() if v not in (None, ())}
    values = check_options(RUN_OPTIONS, given, where, fill_defaults=False)
    check_run_options(check_options(RUN_OPTIONS, values, where))
    return values


def _chat_loader(
    model: str | None, device: str, precision: str, declared: dict[str, Any], where: str
) -> Callable:
    """Check the options and resolve the model name now (no torch needed); return what loads the
    chat (``deepapps.load`` picks the device and precision once, then loads)."""
    import deepapps
    from deepapps.resolution import resolve_model

    values = _checked(declared, where)
    ref = resolve_model("chat", model)
    return lambda: deepapps.load("chat", ref, device, precision, **values)


def _conversation_id(store: Any, conversation: str | None, continue_last: bool) -> str | None:
    """The id of ``--conversation`` (checked) or, with ``--continue``, of the latest conversation."""
    if conversation:
        return store.resolve(conversation)
    if continue_last:
        recent = store.list(limit=1)
        return recent[0].id if recent else None
    return None


@click.group(name="chat")
def chat_group() -> None:
    """Chat with a language model: ask, shell, serve an OpenAI-compatible API, manage conversations."""


@chat_group.command()
@click.argument("message", nargs=-1, required=True)
@_declared_options
@click.option("--conversation", "-c", "conversation", default=None, help="Continue this conversation id.")
@click.option("--continue", "continue_last", is_flag=True, help="Continue the most recent conversation.")
@click.option("--no-save", is_flag=True, help="Do not store this exchange.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (the result) instead of streaming."
)
def ask(message, model, device, precision, conversation, continue_last, no_save, as_json, **declared) -> None:
    """Ask MESSAGE and stream the reply; the exchange is saved as a conversation."""
    from deepapps import InputError

    from .store import ConversationStore

    text = " ".join(message)
    if not text.strip():
        raise InputError("the message is empty; type a question or instruction")
    load = _chat_loader(model, device, precision, declared, "deepapps chat ask")
    store = ConversationStore() if not no_save or conversation or continue_last else None
    cid = _conversation_id(store, conversation, continue_last) if store is not None else None
    chat = load()
    if no_save:
        history = store.get(cid).chat_messages() if cid else []
        stream = chat.stream_reply(history + [{"role": "user", "content": text}])
    else:
        stream = chat.ask(text, conversation_id=cid, store=store)
    _show_reply(stream, as_json)


def _show_reply(stream: Any, as_json: bool) -> None:
    """Stream the reply to stdout (or print its JSON), then its citations and counts on stderr."""
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
        f"first token {result.time_to_first_token_ms:.0f} ms, {result.engine}"
        + (f", {result.tokens_per_second:.1f} tok/s" if result.tokens_per_second else "")
        + (f", conversation {result.conversation_id}]" if result.conversation_id else "]"),
        fg="bright_black",
        err=True,
    )


@chat_group.command()
@_declared_options
@click.option("--conversation", "-c", default=None, help="Resume this conversation id.")
def shell(model, device, precision, conversation, **declared) -> None:
    """An interactive chat in the terminal (empty line or Ctrl-D to quit)."""
    from .store import ConversationStore

    load = _chat_loader(model, device, precision, declared, "deepapps chat shell")
    store = ConversationStore()
    cid = _conversation_id(store, conversation, False)
    chat = load()
    click.secho(
        f"{chat.model_name} on {chat.engine} ({chat.preset or 'no preset'}); empty line to quit",
        fg="bright_black",
    )
    while True:
        try:
            text = input("> ").strip()
        except EOFError:
            break
        if not text:
            break
        stream = chat.ask(text, conversation_id=cid, store=store)
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
    "--max-queue": ("max_queue", "Requests waiting while every slot is busy; more get 429 (default 64)."),
    "--max-body-bytes": ("max_body_bytes", "Largest request body; larger gets 413 (default 1048576)."),
    "--max-messages": ("max_messages", "Most messages in one request (default 256)."),
    "--max-message-chars": ("max_message_chars", "Most characters in one message (default 65536)."),
    "--max-stop": ("max_stop", "Most stop strings in one request (default 4)."),
    "--max-stop-chars": ("max_stop_chars", "Longest stop string (default 128)."),
    "--max-json-depth": ("max_json_depth", "Deepest JSON nesting accepted (default 32)."),
    "--max-tokens-limit": ("max_tokens", "Largest max_tokens a request may ask (default: context window)."),
}
_LIMIT_PREFIX = "limit_"  # click names of the limits (``max_tokens`` is also a chat option)


def _limit_options(f):
    for flag, (name, text) in reversed(_SERVE_LIMITS.items()):
        f = click.option(flag, _LIMIT_PREFIX + name, type=int, default=None, help=text)(f)
    return f


@chat_group.command()
@_declared_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--api-key", default=None, envvar="DEEPAPPS_API_KEY", help="Require 'Authorization: Bearer KEY'."
)
@click.option(
    "--insecure", is_flag=True, help="Allow a non-loopback --host without --api-key (anyone can use it)."
)
@click.option(
    "--parallel",
    type=int,
    default=None,
    help="Replies decoded together by continuous batching, each in its own slot (transformers engine; "
    "default 4); more requests wait in the queue. 1 = one at a time.",
)
@_limit_options
def serve(model, device, precision, host, port, api_key, insecure, parallel, **settings) -> None:
    """Serve an OpenAI-compatible API: /v1/models and /v1/chat/completions (SSE streaming).

    The chat options set the defaults of requests that do not give their own (--preset, --temperature,
    ...); --docs makes every reply answer from those documents.
    """
    from .batching import DEFAULT_SLOTS, batching_unsupported, check_slots
    from .server import ServerLimits, check_bind, resolve_api_key
    from .server import serve as run_server

    parallel = check_slots(DEFAULT_SLOTS if parallel is None else parallel)

    limits = {k[len(_LIMIT_PREFIX) :]: settings.pop(k) for k in list(settings) if k.startswith(_LIMIT_PREFIX)}
    bounds = ServerLimits(**{k: v for k, v in limits.items() if v is not None})
    api_key = resolve_api_key(api_key)
    if not insecure:  # refuse an open bind before the model loads (serve() warns if insecure)
        check_bind(host, api_key, insecure=False)
    chat = _chat_loader(model, device, precision, settings, "deepapps chat serve")()
    auth = "API key required" if api_key else "no API key"
    slots = parallel if parallel > 1 and batching_unsupported(chat) is None else 1
    click.secho(
        f"serving {chat.model_name} ({chat.engine}, {slots} slot{'s' if slots > 1 else ''}) "
        f"on http://{host}:{port}/v1 ({auth}; Ctrl-C to stop)",
        fg="green",
        err=True,
    )
    run_server(
        chat, host=host, port=port, api_key=api_key, limits=bounds, insecure=insecure, parallel=parallel
    )


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
    from .presets import PRESETS

    if as_json:
        click.echo(json.dumps(PRESETS))
        return
    for name, text in PRESETS.items():
        click.echo(f"{name:<18} {text}")
