"""The ``code-generation`` runner: ``deepapps.load("code-generation")(problem)`` -> CodeGenResult.

A problem is text (a function prompt or a statement with examples), a file, ``humaneval:ID`` /
``mini-contests:ID``, a dict or a :class:`~deepapps_nlp.codegen.problems.Problem`. The options are
declared in :mod:`deepapps_nlp.codegen.specs`; deepapps checks them and fills their defaults before
a call reaches :meth:`CodeGenRunner.__call__`.

Python API::

    import deepapps
    solver = deepapps.load("code-generation")           # samples from smollm2-135m-instruct
    result = solver("humaneval:HumanEval/53", n=20, k=5)
    for event in solver.events("mini-contests:sum-two", n=8):   # streamed, for UIs
        ...
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from deepapps import ModelRef, Runner

from .pipeline import CodeGenResult, Event, Settings, solve_events
from .problems import Problem, load_problem, parse_problem_text
from .sandbox import Limits, Sandbox, Verdict

TASK = "code-generation"


class CodeGenRunner(Runner):
    """Samples programs for a problem and picks k submissions (AlphaCode's pipeline).

    ``sampler``: anything with ``name``, ``style_for`` and ``sample`` (see :mod:`.sampling`); built
    from the model by :func:`make_runner`, or given directly (tests, recorded samples).
    """

    task = TASK

    def __init__(
        self, model_name: str, device: str, precision: str, *, sampler: Any, sandbox: Sandbox | None = None
    ) -> None:
        super().__init__(model_name, device, precision)
        self.sampler = sampler
        self.sandbox = sandbox or Sandbox()

    def __call__(
        self,
        inputs: Any,
        n: int,
        k: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        batch_size: int,
        seed: int,
        extra_inputs: int,
        input_source: str,
        timeout: float,
        memory_mb: int,
        workers: int,
        prompt_style: str,
        kind: str,
        filter_fallback: bool,
        score: str,
    ) -> CodeGenResult | list[CodeGenResult]:
        options = dict(
            n=n,
            k=k,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            batch_size=batch_size,
            seed=seed,
            extra_inputs=extra_inputs,
            input_source=input_source,
            timeout=timeout,
            memory_mb=memory_mb,
            workers=workers,
            prompt_style=prompt_style,
            kind=kind,
            filter_fallback=filter_fallback,
            score=score,
        )
        if isinstance(inputs, (list, tuple)):
            return [self._solve(item, options) for item in inputs]
        return self._solve(inputs, options)

    def _solve(self, item: Any, options: dict[str, Any]) -> CodeGenResult:
        result = None
        for event in self._events(item, options):
            if event.kind == "result":
                result = event.result
        assert result is not None
        return result

    def events(self, problem: Any, **options: Any) -> Iterator[Event]:
        """The pipeline's events for one problem (each sample as it is checked, each stage, the result)."""
        return self._events(problem, self.check_call_options(options))

    def _events(self, item: Any, options: dict[str, Any]) -> Iterator[Event]:
        started = time.perf_counter()
        settings_options = {key: value for key, value in options.items() if key != "kind"}
        problem = _problem(item, options["kind"])
        settings = Settings(**settings_options)
        for event in solve_events(problem, self.sampler, self.sandbox, settings):
            if event.kind == "result" and event.result is not None:
                stages = dict(event.result.timings)
                event.result.timings = {}
                self.finish(event.result, problem.id if problem.source != "text" else item, stages, started)
            yield event

    def run_program(
        self, code: str, stdin: str | None = None, timeout: float = 5.0, memory_mb: int = 512
    ) -> Verdict:
        """Run one program (e.g. a submission) in the sandbox."""
        return self.sandbox.run(code, stdin, Limits(timeout=timeout, memory_mb=memory_mb))


def _problem(item: Any, kind: str) -> Problem:
    if kind != "auto" and isinstance(item, str) and "\n" in item:
        return parse_problem_text(item, kind=kind)
    problem = load_problem(item)
    if kind != "auto" and problem.kind != kind:
        return parse_problem_text(problem.text, problem_id=problem.id, kind=kind)
    return problem


def make_runner(model: ModelRef, device: str, precision: str) -> CodeGenRunner:
    """TaskSpec runner factory: the model's sampler (a chat-task LM, or a ``.jsonl`` of recorded samples)."""
    from .sampling import make_sampler

    return CodeGenRunner(model.name, device, precision, sampler=make_sampler(model, device, precision))
