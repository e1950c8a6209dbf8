"""Declared, typed task options: declared once by a plugin, parsed and checked by the core.

A task lists its options as :class:`Option` objects in its :class:`~deepapps.specs.TaskSpec`
(``options`` for ``run``, ``train_options``, ``eval_options``, ``bench_options``). The core
uses the declaration everywhere the same way:

- the CLI parses ``--name VALUE``, ``--name=VALUE``, ``name=VALUE``, ``--flag`` / ``--no-flag``
  against it (so a flag never swallows the next input, and a number is a number);
- the Python API (``deepapps.load(task, **options)``, ``runner(x, **options)``) checks the same
  names, types and ranges;
- the generic UI page builds its widgets from it, and ``docs/options.md`` is generated from it.

A typo gets "did you mean --conf?", a wrong type or an out-of-range value a one-line error
naming the option, before any model loads. Plugins receive every declared option with its
default filled in, so a runner's own signature needs no defaults and no ``**kwargs`` catch-all.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

LOAD = "load"
CALL = "call"
_TYPES = {"int", "float", "bool", "str", "path", "object"}


class OptionError(InputError):
    """An option that is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Option:
    """One option of a task verb.

    ``name`` is a Python identifier (``max_det``); the CLI spells it ``--max-det``.
    ``type`` is one of ``int``, ``float``, ``bool``, ``str``, ``path`` or ``object``
    (Python-only values such as a retriever object; never on the command line).
    ``multiple`` makes it a list (comma-separated on the command line).
    ``when`` is ``"load"`` (passed to the model factory) or ``"call"`` (passed on each call;
    given to ``deepapps.load`` it becomes the runner's default for every call).
    ``default=None`` means "not set": the plugin decides (say how in ``help``).
    """

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    when: str = CALL
    multiple: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"option name {self.name!r} must be a lowercase Python identifier")
        if self.type not in _TYPES:
            raise ValueError(f"option {self.name!r}: type must be one of {sorted(_TYPES)}")
        if self.when not in (LOAD, CALL):
            raise ValueError(f"option {self.name!r}: when must be 'load' or 'call'")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def cli(self) -> bool:
        return self.type != "object"

    def describe_type(self) -> str:
        if self.choices:
            kind = "|".join(str(c) for c in self.choices)
        elif self.min is not None or self.max is not None:
            lo = "" if self.min is None else _fmt(self.min)
            hi = "" if self.max is None else _fmt(self.max)
            kind = f"{self.type} in [{lo}, {hi}]" if lo and hi else f"{self.type} {'≥ ' + lo if lo else '≤ ' + hi}"
        else:
            kind = self.type
        return f"list of {kind} (comma-separated)" if self.multiple else kind

    # parsing and checking ----------------------------------------------------
    def parse(self, text: str) -> Any:
        """A command-line string to a checked value."""
        if self.multiple:
            parts = [p.strip() for p in str(text).split(",") if p.strip()]
            return self.check([self._parse_one(p) for p in parts])
        return self.check(self._parse_one(text))

    def _parse_one(self, text: str) -> Any:
        low = text.strip().lower()
        if self.type == "bool":
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise self._error(f"expected true or false, got {text!r}")
        if self.type == "int":
            try:
                return int(low)
            except ValueError:
                raise self._error(f"expected a whole number, got {text!r}") from None
        if self.type == "float":
            try:
                return float(low)
            except ValueError:
                raise self._error(f"expected a number, got {text!r}") from None
        if self.type == "path":
            return Path(text).expanduser()
        if self.type == "object":
            raise self._error("can only be given from Python, not as text")
        return text

    def check(self, value: Any) -> Any:
        """Check (and lightly normalise) a value given from Python or parsed from text."""
        if value is None:
            return None
        if self.multiple:
            if isinstance(value, str):
                return self.parse(value)
            if not isinstance(value, (list, tuple)):
                value = [value]
            return [self._check_one(v) for v in value]
        return self._check_one(value)

    def _check_one(self, value: Any) -> Any:
        if isinstance(value, str) and self.type not in ("str", "path", "object"):
            return self._check_one(self._parse_one(value))
        kind = self.type
        if kind == "bool" and not isinstance(value, bool):
            raise self._error(f"expected true or false, got {value!r}")
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
                raise self._error(f"expected a whole number, got {value!r}")
            value = int(value)
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self._error(f"expected a finite number, got {value!r}")
            value = float(value)
        if kind == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # e.g. class ids given as numbers from Python
        if kind == "str" and not isinstance(value, str):
            raise self._error(f"expected text, got {type(value).__name__}")
        if kind == "path":
            if not isinstance(value, (str, os.PathLike)):
                raise self._error(f"expected a path, got {type(value).__name__}")
            value = Path(value).expanduser()
        if self.choices and value not in self.choices:
            hint = _did_you_mean(str(value), [str(c) for c in self.choices])
            raise self._error(f"{value!r} is not one of {', '.join(map(str, self.choices))}{hint}")
        if self.min is not None and value < self.min:
            raise self._error(f"{value!r} is below the minimum {_fmt(self.min)}")
        if self.max is not None and value > self.max:
            raise self._error(f"{value!r} is above the maximum {_fmt(self.max)}")
        return value

    def _error(self, what: str) -> OptionError:
        return OptionError(f"option {self.flag}: {what}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "flag": self.flag,
            "type": self.type,
            "multiple": self.multiple,
            "default": str(self.default) if isinstance(self.default, Path) else self.default,
            "choices": list(self.choices),
            "min": self.min,
            "max": self.max,
            "when": self.when,
            "help": self.help,
        }


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _did_you_mean(name: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def by_name(options: Sequence[Option]) -> dict[str, Option]:
    return {o.name: o for o in options}


def unknown_option_error(name: str, options: Sequence[Option], where: str) -> OptionError:
    """'unknown option --vists for go; did you mean --visits?' (names in flag form)."""
    flag = "--" + name.replace("_", "-")
    flags = [o.flag for o in options]
    hint = _did_you_mean(flag, flags)
    listing = ", ".join(sorted(flags)) or "(none)"
    return OptionError(f"unknown option {flag} for {where}{hint}. Valid options: {listing}")


def check_options(
    options: Sequence[Option], given: Mapping[str, Any], where: str, fill_defaults: bool = True
) -> dict[str, Any]:
    """Check every given value against the declaration; return them with defaults filled in."""
    table = by_name(options)
    out: dict[str, Any] = {}
    for name, value in given.items():
        key = name.replace("-", "_")
        if key not in table:
            raise unknown_option_error(key, options, where)
        out[key] = table[key].check(value)
    if fill_defaults:
        for opt in options:
            out.setdefault(opt.name, opt.default)
    return out


def split_by_when(options: Sequence[Option], values: Mapping[str, Any]) -> tuple[dict, dict]:
    """(load-time values, call-time values) of already-checked ``values``."""
    table = by_name(options)
    load = {k: v for k, v in values.items() if table[k].when == LOAD}
    call = {k: v for k, v in values.items() if table[k].when == CALL}
    return load, call


def parse_cli(tokens: Sequence[str], options: Sequence[Option], where: str) -> tuple[list[str], dict[str, Any]]:
    """Split command-line tokens into inputs and checked option values (given ones only).

    ``--name VALUE``, ``--name=VALUE`` and ``name=VALUE`` set an option; a bool option is a flag
    (``--track``, ``--no-track``) and never takes the next token; ``--`` ends options. Everything
    else is an input, so inputs and options may come in any order.
    """
    table = {o.flag: o for o in options if o.cli}
    names = {o.name: o for o in options if o.cli}
    inputs: list[str] = []
    values: dict[str, Any] = {}
    i = 0
    only_inputs = False
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if only_inputs:
            inputs.append(tok)
            continue
        if tok == "--":
            only_inputs = True
            continue
        if tok.startswith("--") and len(tok) > 2:
            flag, eq, text = tok.partition("=")
            opt = table.get(flag.replace("_", "-"))
            if opt is None and flag.startswith("--no-") and not eq:
                neg = table.get("--" + flag[5:])
                if neg is not None and neg.type == "bool":
                    values[neg.name] = False
                    continue
            if opt is None:
                raise unknown_option_error(flag[2:], [o for o in options if o.cli], where)
            if opt.type == "bool" and not eq:
                values[opt.name] = True
                continue
            if not eq:
                if i >= len(tokens):
                    raise OptionError(f"option {opt.flag} needs a value ({opt.describe_type()})")
                text = tokens[i]
                i += 1
            values[opt.name] = opt.parse(text)
            continue
        if len(tok) > 1 and tok[0] == "-" and tok[1].isalpha() and not os.path.exists(tok):
            raise OptionError(
                f"unknown option {tok} for {where}: task options are spelled --name VALUE "
                "(use -- before an input that starts with -)"
            )
        key, eq, text = tok.partition("=")
        if eq and key.replace("-", "_") in names and not os.path.exists(tok):
            opt = names[key.replace("-", "_")]
            values[opt.name] = opt.parse(text)
            continue
        inputs.append(tok)
    return inputs, values


def options_table(options: Sequence[Option]) -> str:
    """A Markdown table of options (for generated docs)."""
    rows = ["| option | type | default | when | description |", "|---|---|---|---|---|"]
    for o in options:
        if not o.cli:
            flag = f"`{o.name}` (Python only)"
        else:
            flag = f"`{o.flag}`"
        default = "—" if o.default is None else f"`{_show(o.default)}`"
        desc = o.help.replace("|", "\\|")
        kind = o.describe_type().replace("|", " \\| ")
        rows.append(f"| {flag} | {kind} | {default} | {o.when} | {desc} |")
    return "\n".join(rows)


def help_text(options: Sequence[Option]) -> str:
    """Plain-text listing for ``deepapps run TASK --help``."""
    lines = []
    for o in options:
        if not o.cli:
            continue
        default = "" if o.default is None else f" [default: {_show(o.default)}]"
        kind = "" if o.type == "bool" else (o.describe_type() if o.choices else o.describe_type().upper())
        head = f"  {o.flag} {kind}".rstrip()
        lines.append(f"{head}\n      {o.help}{default}{' (load time)' if o.when == LOAD else ''}")
    return "\n".join(lines) if lines else "  (this task declares no options)"
