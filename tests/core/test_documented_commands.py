"""Every `deepapps ...` command shown in README.md and docs/ still parses: its task or sub-command
exists and every option it uses is declared (so docs cannot drift from the code); the cheap
ones also run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from deepapps.cli import _add_plugin_commands, cli
from deepapps.options import OptionError, parse_cli
from deepapps.registry import registry

REPO = Path(__file__).resolve().parents[2]
VERBS = {"run": "run", "train": "train", "eval": "eval", "bench": "bench"}
CORE_FLAGS = {
    "run": {"--model": 1, "-m": 1, "--device": 1, "-d": 1, "--precision": 1, "--json": 0, "--save": 1},
    "train": {"--model": 1, "-m": 1, "--dataset": 1, "--out": 1, "--nproc": 1, "--device": 1, "-d": 1,
              "--precision": 1, "--json": 0},
    "eval": {"--model": 1, "-m": 1, "--dataset": 1, "--split": 1, "--limit": 1, "--device": 1, "-d": 1,
             "--precision": 1, "--json": 0},
    "bench": {"--model": 1, "-m": 1, "--device": 1, "-d": 1, "--precision": 1, "--json": 0},
}
PLACEHOLDERS = re.compile(r"\b(TASK|MODEL|INPUT|ID)\b|\.\.\.|\[|\|")


def documented_commands() -> list[tuple[str, str]]:
    """(file, command) for each `deepapps ...` line inside a fenced code block."""
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        in_block, pending = False, ""
        for line in path.read_text().splitlines():
            if line.strip().startswith("```"):
                in_block, pending = not in_block, ""
                continue
            if not in_block:
                continue
            text = pending + line.split(" #")[0].strip()
            if text.endswith("\\"):
                pending = text[:-1] + " "
                continue
            pending = ""
            text = text.removeprefix("$ ")
            if text.startswith("deepapps ") and not PLACEHOLDERS.search(text):
                found.append((path.name, text))
    return found


COMMANDS = documented_commands()


def _task_options_only(verb: str, args: list[str]) -> list[str]:
    out, skip = [], 0
    flags = CORE_FLAGS[verb]
    for arg in args:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in flags:
            skip = 0 if "=" in arg else flags[name]
            continue
        out.append(arg)
    return out


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}: {c[:70]}" for d, c in COMMANDS])
def test_documented_command_parses(doc, command):
    args = shlex.split(command)[1:]
    if "|" in args:
        args = args[: args.index("|")]
    if args[0] in VERBS:
        spec = registry.task(args[1])
        options = spec.verb_options()[VERBS[args[0]]]
        if args[0] == "run":
            from deepapps.batch import batch_options

            options = options + batch_options(spec)  # the core's --workers/--ray-address/--jsonl
        try:
            parse_cli(_task_options_only(args[0], args[2:]), options, f"{doc}: {command}")
        except OptionError as exc:
            pytest.fail(f"{doc} documents `{command}`, which the task refuses: {exc}")
        return
    _add_plugin_commands()
    group, rest = cli, args
    while isinstance(group, click.Group) and rest and rest[0] in group.commands:
        group, rest = group.commands[rest[0]], rest[1:]
    assert not isinstance(group, click.Group) or not rest or rest[0].startswith("-"), (
        f"{doc} documents `{command}`, but `{rest[0]}` is not a sub-command"
    )
    try:
        group.make_context(command, list(rest))
    except click.NoSuchOption as exc:
        pytest.fail(f"{doc} documents `{command}`: {exc.format_message()}")
    except click.UsageError as exc:  # a documented file that does not exist here is fine
        assert "No such option" not in exc.format_message(), exc.format_message()


def test_docs_show_commands_at_all():
    verbs = {shlex.split(c)[1] for _, c in COMMANDS}
    assert {"run", "eval", "bench"} <= verbs and len(COMMANDS) > 30


CHEAP = [
    ["plugins"],
    ["tasks", "--json"],
    ["models", "--task", "object-detection"],
    ["options", "go"],
    ["run", "go", "D4 C3 E3", "--size", "7", "--visits", "16"],
]


@pytest.mark.parametrize("args", CHEAP, ids=[" ".join(a) for a in CHEAP])
def test_cheap_documented_commands_run(args):
    _add_plugin_commands()
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
