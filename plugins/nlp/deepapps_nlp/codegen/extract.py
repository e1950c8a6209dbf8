"""From a model's text to a program: the *extract code* stage.

``chat`` style: the model answered in prose around fenced code blocks; take the block that
defines the function (function problems) or the longest Python block (stdin/stdout problems);
an unclosed last block (the model ran out of tokens) counts. Text with no fence is taken whole
when it parses as Python. ``completion`` style: the model continued the prompt itself; cut the
continuation at the first line that starts a new top-level statement (Codex's stop sequences) and
put it after the prompt.

For function problems only definitions and imports are kept at the top level (example calls,
``input()`` or ``if __name__ == "__main__":`` blocks would run on import, read from an empty stdin
or print), and the prompt's own imports and helper functions are added when a block lacks them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from .problems import Problem

STYLES = ("chat", "completion")
COMPLETION_STOPS = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#", "\nassert ", '\n"""', "\n```")
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
_KEEP = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
)


@dataclass
class Extracted:
    """``status``: ``ok``, ``no_code`` (nothing that looks like a program) or ``syntax_error``."""

    code: str | None
    status: str
    error: str | None = None
    dropped_statements: int = 0


def truncate_completion(text: str, stops: tuple[str, ...] = COMPLETION_STOPS) -> str:
    """``text`` up to the first stop sequence (the function body a completion model wrote)."""
    cut = len(text)
    for stop in stops:
        pos = text.find(stop)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut]


def extract_code(text: str, problem: Problem, style: str) -> Extracted:
    """The program in ``text`` for ``problem``, checked to compile."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}")
    if style == "completion":
        body = truncate_completion(text)
        if not body.strip():
            return Extracted(None, "no_code", "the completion is empty")
        code = completion_prefix(problem) + body
    else:
        code = _from_chat(text, problem)
        if code is None:
            return Extracted(None, "no_code", "no code block and the text is not Python")
    dropped = 0
    if problem.kind == "function":
        code, dropped = _definitions_only(code)
    return _compiled(code, dropped)


def completion_prefix(problem: Problem) -> str:
    """The text a completion-style model continues: the prompt, or a stub for a statement."""
    if problem.kind == "function":
        return problem.text if problem.text.endswith("\n") else problem.text + "\n"
    quoted = problem.text.replace('"""', "'''")
    return f'"""\n{quoted.strip()}\n"""\nimport sys\n\n'


def _from_chat(text: str, problem: Problem) -> str | None:
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    blocks = [b for b in blocks if b.strip()]
    if not blocks:
        stripped = text.strip()
        return stripped + "\n" if stripped and _parses(stripped) and _looks_like_code(stripped) else None
    if problem.kind == "function":
        defining = [
            b for b in blocks if re.search(rf"\bdef\s+{re.escape(problem.entry_point or '')}\s*\(", b)
        ]
        if defining:
            return _with_prompt_context(defining[0], problem)
        if blocks[0].startswith((" ", "\t")):  # a bare function body
            return completion_prefix(problem) + blocks[0]
        return _with_prompt_context(max(blocks, key=len), problem)
    return max(blocks, key=len).rstrip() + "\n"


def _looks_like_code(text: str) -> bool:
    """Plain prose can parse as Python (a single name); demand a statement-like line."""
    return bool(
        re.search(r"^\s*(def |class |import |from |print\(|for |while |if |[\w\[\], ]+ ?=)", text, re.M)
    )


def _with_prompt_context(block: str, problem: Problem) -> str:
    """The prompt's imports and helper definitions the block does not define itself."""
    module = _parse(problem.text)
    if module is None:
        return block
    defined = _top_level_names(block)
    context = []
    for node in module.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            context.append(ast.get_source_segment(problem.text, node) or "")
        elif (
            isinstance(node, (ast.FunctionDef, ast.ClassDef))
            and node.name not in defined
            and node.name != problem.entry_point
        ):
            context.append(ast.get_source_segment(problem.text, node) or "")
    context = [c for c in context if c]
    return ("\n".join(context) + "\n\n\n" + block) if context else block


def _top_level_names(code: str) -> set[str]:
    module = _parse(code)
    if module is None:
        return set(re.findall(r"^def\s+(\w+)", code, re.M))
    return {
        n.name for n in module.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
    }


def _definitions_only(code: str) -> tuple[str, int]:
    """Drop top-level statements other than imports, definitions and assignments."""
    module = _parse(code)
    if module is None:
        return code, 0
    kept = [n for n in module.body if isinstance(n, _KEEP) or _is_docstring(n)]
    dropped = len(module.body) - len(kept)
    if not dropped:
        return code, 0
    lines = code.splitlines()
    parts = []
    for node in kept:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        parts.append("\n".join(lines[start - 1 : node.end_lineno]))
    if len({n.lineno for n in kept}) != len(kept):  # statements sharing a line: rebuild from the tree
        module.body = kept
        return ast.unparse(module) + "\n", dropped
    return "\n\n".join(parts) + "\n", dropped


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _parses(code: str) -> bool:
    return _parse(code) is not None


def _compiled(code: str, dropped: int) -> Extracted:
    try:
        compile(code, "candidate.py", "exec")
    except SyntaxError as exc:
        return Extracted(code, "syntax_error", f"line {exc.lineno}: {exc.msg}", dropped)
    except ValueError as exc:  # e.g. null bytes
        return Extracted(code, "syntax_error", str(exc), dropped)
    return Extracted(code, "ok", None, dropped)
