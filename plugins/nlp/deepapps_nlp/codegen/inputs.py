"""Extra inputs for clustering: the *generate inputs* stage.

AlphaCode clusters the filtered samples by what they print on inputs nobody gave them. Two ways
to make such inputs here:

- ``mutate`` (default): small random edits of the public example inputs that keep their shape.
  Function problems: each argument literal of an example call is mutated by type (numbers moved,
  strings shuffled or cut, lists shortened, extended, shuffled or reversed, booleans flipped).
  Stdin/stdout problems: numbers are moved within their sign, words reshuffled, and a number that
  counts the tokens of the next line (or the lines after it) is kept so the input stays consistent.
- ``model``: the model writes small input-generator programs, run in the sandbox (seeded); their
  outputs become inputs. Topped up by mutation when they fail (a 135M model often does).

Inputs are deterministic for a given seed.
"""

from __future__ import annotations

import ast
import random
import re
from typing import Any

from .problems import Problem

SOURCES = ("mutate", "model")
MAX_INPUT_CHARS = 4000
_INT = re.compile(r"^[+-]?\d+$")


# --- function problems ----------------------------------------------------------------------------------
def _call_args(call: str) -> tuple[str, list[Any], dict[str, Any]] | None:
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        return None
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    except (ValueError, SyntaxError, TypeError):
        return None
    return node.func.id, args, kwargs


def mutate_value(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """A nearby value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        step = rng.choice([1, 1, 2, 3, max(1, abs(value) // 2), rng.randint(1, 10)])
        out = value + rng.choice([-1, 1]) * step
        return max(out, 0) if value >= 0 and rng.random() < 0.8 else out
    if isinstance(value, float):
        return round(value + rng.choice([-1, 1]) * rng.choice([0.5, 1.0, abs(value) / 2 or 1.0]), 3)
    if isinstance(value, str):
        return _mutate_text(value, rng)
    if isinstance(value, (list, tuple)) and depth < 3:
        return type(value)(_mutate_sequence(list(value), rng, depth))
    if isinstance(value, dict) and value and depth < 3:
        key = rng.choice(list(value))
        return {**value, key: mutate_value(value[key], rng, depth + 1)}
    return value


def _mutate_text(text: str, rng: random.Random) -> str:
    if not text:
        return rng.choice("abcxyz ")
    chars = list(text)
    op = rng.randrange(5)
    if op == 0:
        rng.shuffle(chars)
    elif op == 1 and len(chars) > 1:
        del chars[rng.randrange(len(chars))]
    elif op == 2:
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(chars))
    elif op == 3:
        chars.reverse()
    else:
        i = rng.randrange(len(chars))
        chars[i] = chars[i].swapcase() if chars[i].isalpha() else rng.choice(text)
    return "".join(chars)


def _mutate_sequence(items: list[Any], rng: random.Random, depth: int) -> list[Any]:
    op = rng.randrange(5)
    if not items:
        return []
    if op == 0:
        rng.shuffle(items)
    elif op == 1 and len(items) > 1:
        del items[rng.randrange(len(items))]
    elif op == 2:
        items.insert(rng.randrange(len(items) + 1), mutate_value(rng.choice(items), rng, depth + 1))
    elif op == 3:
        items.reverse()
    else:
        i = rng.randrange(len(items))
        items[i] = mutate_value(items[i], rng, depth + 1)
    return items


def function_inputs(problem: Problem, count: int, seed: int = 0) -> list[str]:
    """Up to ``count`` new calls of the entry point, mutated from the public example calls."""
    bases = [parsed for e in problem.public if (parsed := _call_args(e.input)) is not None]
    if not bases:
        return []
    rng = random.Random(seed)
    seen = {e.input.replace(" ", "") for e in problem.public}
    out: list[str] = []
    for _ in range(count * 20):
        if len(out) >= count:
            break
        name, args, kwargs = rng.choice(bases)
        args, kwargs = list(args), dict(kwargs)
        slots = [("a", i) for i in range(len(args))] + [("k", k) for k in kwargs]
        for kind, key in rng.sample(slots, k=min(len(slots), rng.choice([1, 1, 2]))):
            if kind == "a":
                args[key] = mutate_value(args[key], rng)
            else:
                kwargs[key] = mutate_value(kwargs[key], rng)
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        call = f"{name}({', '.join(parts)})"
        if len(call) <= MAX_INPUT_CHARS and call.replace(" ", "") not in seen:
            seen.add(call.replace(" ", ""))
            out.append(call)
    return out


# --- stdin/stdout problems ----------------------------------------------------------------------------
def _count_positions(lines: list[list[str]]) -> set[tuple[int, int]]:
    """(line, token) positions holding a count: the token count of the next line, or the number of
    lines after it, or of the rest of its own line."""
    keep = set()
    for i, tokens in enumerate(lines):
        for j, tok in enumerate(tokens):
            if not _INT.match(tok):
                continue
            n = int(tok)
            next_len = len(lines[i + 1]) if i + 1 < len(lines) else -1
            if n in (next_len, len(lines) - i - 1, len(tokens) - j - 1) and n > 0:
                keep.add((i, j))
    return keep


def mutate_stdin(text: str, rng: random.Random) -> str:
    lines = [line.split() for line in text.strip("\n").splitlines()]
    counts = _count_positions(lines)
    spots = [(i, j) for i, toks in enumerate(lines) for j in range(len(toks)) if (i, j) not in counts]
    if not spots:
        return text
    for i, j in rng.sample(spots, k=min(len(spots), rng.choice([1, 2, 3]))):
        tok = lines[i][j]
        if _INT.match(tok):
            lines[i][j] = str(mutate_value(int(tok), rng))
        elif re.match(r"^[+-]?\d*\.\d+$", tok):
            lines[i][j] = f"{mutate_value(float(tok), rng):g}"
        else:
            lines[i][j] = _mutate_text(tok, rng).replace(" ", "") or tok
    if rng.random() < 0.3:  # reorder the values of one line without counts
        free = [
            i
            for i, toks in enumerate(lines)
            if len(toks) > 1 and not any((i, j) in counts for j in range(len(toks)))
        ]
        if free:
            rng.shuffle(lines[rng.choice(free)])
    return "\n".join(" ".join(toks) for toks in lines) + "\n"


def stdio_inputs(problem: Problem, count: int, seed: int = 0) -> list[str]:
    """Up to ``count`` new stdin texts mutated from the public example inputs."""
    bases = [e.input for e in problem.public if e.input.strip()]
    if not bases:
        return []
    rng = random.Random(seed)
    seen = {" ".join(b.split()) for b in bases}
    out: list[str] = []
    for _ in range(count * 20):
        if len(out) >= count:
            break
        candidate = mutate_stdin(rng.choice(bases), rng)
        key = " ".join(candidate.split())
        if key not in seen and len(candidate) <= MAX_INPUT_CHARS:
            seen.add(key)
            out.append(candidate)
    return out


def mutated_inputs(problem: Problem, count: int, seed: int = 0) -> list[str]:
    if problem.kind == "function":
        return function_inputs(problem, count, seed)
    return stdio_inputs(problem, count, seed)


# --- model-written generators ----------------------------------------------------------------------------
def generator_prompt(problem: Problem) -> list[dict[str, str]]:
    """Chat messages asking for a program that prints one random valid input."""
    if problem.kind == "function":
        ask = (
            f"Write a Python program that prints ONE random valid argument list for `{problem.entry_point}` "
            "as a Python list literal, e.g. [3, 'abc']. Use the random module. Reply with one ```python block."
        )
    else:
        ask = (
            "Write a Python program that prints ONE random valid input for this problem, in the exact "
            "input format. Use the random module. Reply with one ```python block."
        )
    examples = "\n".join(f"Example input:\n{e.input}" for e in problem.public[:2])
    return [{"role": "user", "content": f"{problem.text.strip()}\n\n{examples}\n\n{ask}"}]


def seeded_generator(code: str, seed: int) -> str:
    return f"import random as _r\n_r.seed({seed})\n{code}"


def generator_output_to_input(problem: Problem, stdout: str) -> str | None:
    """A generator's output as an input (function problems: an argument list literal)."""
    text = stdout.strip()
    if not text or len(text) > MAX_INPUT_CHARS:
        return None
    if problem.kind == "stdio":
        return text + "\n"
    try:
        args = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(args, (list, tuple)):
        args = [args]
    return f"{problem.entry_point}({', '.join(repr(a) for a in args)})"
