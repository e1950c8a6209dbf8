"""AlphaCode's method, stage by stage: sample N, extract code, filter on the public examples,
generate extra inputs, cluster by behaviour, rank, pick k.

:func:`solve_events` yields an event per sample as soon as it is extracted and checked on the
examples (the UI streams them), one per finished stage, and the final :class:`CodeGenResult`.
:func:`solve` returns just the result. Nothing a sample does can stop the pipeline: code that is
missing or does not parse, crashes, timeouts, non-UTF-8 or gigabytes of output all end up as marks
on that sample (and notes on the result).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from deepapps import Result
from deepapps.runtime.timing import Timer

from . import judge
from .extract import STYLES, extract_code
from .inputs import SOURCES, generator_output_to_input, generator_prompt, mutated_inputs, seeded_generator
from .problems import Problem
from .sampling import Prompt, Sampler, SampleText, build_prompt
from .sandbox import Limits, Sandbox
from .specs import (
    BATCH_SIZE,
    EXTRA_INPUTS,
    MAX_TOKENS,
    MEMORY_MB,
    SEED,
    TEMPERATURE,
    TIMEOUT,
    TOP_P,
    WORKERS,
    K,
    N,
)

STAGES = ("sample", "extract", "filter", "inputs", "cluster", "rank", "pick", "score")
SCORE_MODES = ("none", "submissions", "all")
GENERATORS = 4  # model-written input generators sampled when inputs come from the model


@dataclass
class Settings:
    """Pipeline settings (the task's declared options carry the same names and defaults)."""

    n: int = N
    k: int = K
    temperature: float = TEMPERATURE
    top_p: float = TOP_P
    max_tokens: int = MAX_TOKENS
    batch_size: int = BATCH_SIZE
    seed: int = SEED
    extra_inputs: int = EXTRA_INPUTS
    input_source: str = "mutate"
    timeout: float = TIMEOUT
    memory_mb: int = MEMORY_MB
    workers: int = WORKERS
    prompt_style: str = "auto"
    filter_fallback: bool = True
    score: str = "submissions"

    def limits(self) -> Limits:
        return Limits(timeout=self.timeout, memory_mb=self.memory_mb)


@dataclass
class Sample:
    """One raw sample and what became of it."""

    index: int
    text: str
    tokens: int = 0
    finish: str = "stop"
    code: str | None = None
    extract: str = "ok"  # ok | no_code | syntax_error
    extract_error: str | None = None
    dropped_statements: int = 0
    duplicate_of: int | None = None
    public_passed: int = 0
    public_total: int = 0
    public_status: str = ""  # the worst sandbox status on the examples
    public_errors: list[str] = field(default_factory=list)
    stdout_utf8: bool = True
    output_truncated: bool = False
    passed_filter: bool | None = None  # None: no filter (no examples) or no code
    cluster: int | None = None
    hidden_passed: bool | None = None

    @property
    def runnable(self) -> bool:
        return self.extract == "ok" and self.code is not None


@dataclass
class Cluster:
    id: int
    size: int
    members: list[int]
    representative: int
    behaviour: list[str]


@dataclass
class Submission:
    rank: int
    sample: int
    cluster: int
    cluster_size: int
    public_passed: int
    public_total: int
    code: str
    hidden_passed: bool | None = None


@dataclass(kw_only=True)
class CodeGenResult(Result):
    """Up to k ranked submissions, every raw sample, the clusters, and what each stage did."""

    problem: dict[str, Any] = field(default_factory=dict)
    style: str = ""
    submissions: list[Submission] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_inputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def solved(self) -> bool | None:
        """Whether a submission passed the hidden tests (None when they were not run)."""
        scored = [s.hidden_passed for s in self.submissions if s.hidden_passed is not None]
        return any(scored) if scored else None

    def summary(self) -> str:
        st = self.stages
        parts = [f"{len(self.samples)} samples", f"{st.get('extract', {}).get('ok', 0)} with code"]
        filt = st.get("filter", {})
        parts.append(
            "filter skipped" if filt.get("skipped") else f"{filt.get('kept', 0)} passed the examples"
        )
        parts.append(f"{len(self.clusters)} clusters")
        parts.append(f"{len(self.submissions)} submissions")
        if self.solved is not None:
            parts.append("solved" if self.solved else "not solved")
        return " -> ".join(parts)


@dataclass
class Event:
    """``kind``: ``sample`` (``sample`` set), ``stage`` (``stage``, ``info``) or ``result``."""

    kind: str
    sample: Sample | None = None
    stage: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    result: CodeGenResult | None = None


class _Run:
    """State shared by the stages of one problem."""

    def __init__(self, problem: Problem, sampler: Sampler, sandbox: Sandbox, settings: Settings) -> None:
        self.problem, self.sampler, self.sandbox, self.s = problem, sampler, sandbox, settings
        self.limits = settings.limits()
        self.timer = Timer()
        self.samples: list[Sample] = []
        self.notes: list[str] = []
        self.stages: dict[str, dict[str, Any]] = {}
        self.by_code: dict[str, int] = {}
        self.public: dict[str, judge.RunReport] = {}
        self.pool = ThreadPoolExecutor(max_workers=max(1, settings.workers))
        style = settings.prompt_style
        self.style = sampler.style_for(problem) if style == "auto" else style
        if self.style not in STYLES:
            raise ValueError(f"prompt style must be auto or one of {STYLES}")

    def close(self) -> None:
        self.pool.shutdown(wait=True)


# --- stages 1-3: sample, extract, filter (per batch, so samples stream) ------------------------------------
def _make_sample(run: _Run, index: int, raw: SampleText) -> Sample:
    sample = Sample(index=index, text=raw.text, tokens=raw.tokens, finish=raw.finish)
    extracted = extract_code(raw.text, run.problem, run.style)
    sample.code, sample.extract, sample.extract_error = extracted.code, extracted.status, extracted.error
    sample.dropped_statements = extracted.dropped_statements
    if sample.runnable:
        first = run.by_code.setdefault(sample.code, index)
        sample.duplicate_of = None if first == index else first
    return sample


def _check_public(run: _Run, batch: list[Sample]) -> None:
    if not run.problem.public:
        return
    todo = list({s.code for s in batch if s.runnable and s.code not in run.public})
    reports = run.pool.map(lambda code: judge.run_public(run.sandbox, run.problem, code, run.limits), todo)
    run.public.update(zip(todo, reports, strict=True))
    for sample in batch:
        if not sample.runnable:
            continue
        report = run.public[sample.code]
        sample.public_passed, sample.public_total = report.passed, len(report.outcomes)
        sample.public_status = report.status
        sample.public_errors = sorted({o.error for o in report.outcomes if o.error})[:3]
        sample.stdout_utf8, sample.output_truncated = report.stdout_utf8, report.stdout_truncated
        sample.passed_filter = report.all_passed


def _sample_stage(run: _Run, prompt: Prompt) -> Iterator[Event]:
    s = run.s
    batches = run.sampler.sample(
        prompt,
        n=s.n,
        temperature=s.temperature,
        top_p=s.top_p,
        max_tokens=s.max_tokens,
        seed=s.seed,
        batch_size=max(1, s.batch_size),
    )
    tokens = 0
    while True:
        with run.timer.stage("sample"):
            raw = next(batches, None)
        if raw is None:
            break
        with run.timer.stage("extract"):
            batch = [_make_sample(run, len(run.samples) + i, r) for i, r in enumerate(raw)]
        with run.timer.stage("filter"):
            _check_public(run, batch)
        for sample in batch:
            tokens += sample.tokens
            run.samples.append(sample)
            yield Event("sample", sample=sample)
    run.stages["sample"] = {
        "n": len(run.samples),
        "requested": s.n,
        "tokens": tokens,
        "sampler": run.sampler.name,
        "style": run.style,
        "hit_max_tokens": sum(x.finish == "length" for x in run.samples),
    }
    if len(run.samples) < s.n:
        run.notes.append(f"the sampler gave {len(run.samples)} of the {s.n} samples asked for")
    yield Event("stage", stage="sample", info=run.stages["sample"])


def _extract_report(run: _Run) -> dict[str, Any]:
    counts = {kind: sum(x.extract == kind for x in run.samples) for kind in ("ok", "no_code", "syntax_error")}
    counts["unique_programs"] = len(run.by_code)
    if counts["no_code"]:
        run.notes.append(f"{counts['no_code']} sample(s) held no code")
    if counts["syntax_error"]:
        run.notes.append(f"{counts['syntax_error']} sample(s) did not parse as Python")
    if not counts["ok"]:
        run.notes.append("no sample produced a program: nothing to submit")
    return counts


def _filter_report(run: _Run) -> tuple[list[Sample], dict[str, Any]]:
    """The samples that go on to clustering, and what the filter did."""
    runnable = [x for x in run.samples if x.runnable]
    if not run.problem.public:
        run.notes.append("the problem has no public examples: the filter stage was skipped")
        return runnable, {"skipped": True, "reason": "no public examples", "kept": len(runnable)}
    kept = [x for x in runnable if x.passed_filter]
    info: dict[str, Any] = {
        "skipped": False,
        "examples": len(run.problem.public),
        "kept": len(kept),
        "fallback": False,
    }
    if not kept and runnable and run.s.filter_fallback:
        best = max(x.public_passed for x in runnable)
        kept = [x for x in runnable if x.public_passed == best]
        info.update(fallback=True, kept=len(kept), best_passed=best)
        run.notes.append(
            f"no sample passed every public example; kept the {len(kept)} passing the most "
            f"({best} of {len(run.problem.public)})"
        )
    bad_output = sum(not x.stdout_utf8 for x in runnable)
    if bad_output:
        run.notes.append(f"{bad_output} sample(s) printed output that is not valid UTF-8")
    capped = sum(x.output_truncated or x.public_status == "killed" for x in runnable)
    if capped:
        run.notes.append(f"{capped} sample(s) were stopped by the output cap or a signal")
    info["statuses"] = {
        st: sum(x.public_status == st for x in runnable)
        for st in sorted({x.public_status for x in runnable if x.public_status})
    }
    return kept, info


# --- stage 4: extra inputs -------------------------------------------------------------------------------
def _model_inputs(run: _Run, count: int) -> list[str]:
    """Inputs printed by model-written generator programs (each run a few times, seeded)."""
    prompt = Prompt("chat", messages=generator_prompt(run.problem), problem_id=f"{run.problem.id}#generator")
    programs = []
    for batch in run.sampler.sample(
        prompt,
        n=GENERATORS,
        temperature=max(run.s.temperature, 0.6),
        top_p=run.s.top_p,
        max_tokens=run.s.max_tokens,
        seed=run.s.seed + 7,
        batch_size=GENERATORS,
    ):
        for raw in batch:
            stdio_view = Problem(id="generator", kind="stdio", text="")
            extracted = extract_code(raw.text, stdio_view, "chat")
            if extracted.status == "ok" and extracted.code:
                programs.append(extracted.code)
    if not programs:
        return []
    runs = 2 * count  # every run has its own seed; twice the need leaves room for repeats and failures
    jobs = [(seeded_generator(programs[i % len(programs)], run.s.seed * 1000 + i), None) for i in range(runs)]
    found: list[str] = []
    for verdict in run.sandbox.map(jobs, workers=run.s.workers, limits=Limits(timeout=2, memory_mb=256)):
        made = generator_output_to_input(run.problem, verdict.stdout) if verdict.ok else None
        if made and made not in found:
            found.append(made)
    return found[:count]


def _inputs_stage(run: _Run, survivors: list[Sample]) -> list[str]:
    """The inputs to cluster on: the public example inputs, then ``extra_inputs`` generated ones."""
    s = run.s
    public = [e.input for e in run.problem.public]
    if len({x.code for x in survivors}) < 2:
        run.stages["inputs"] = {"source": "none", "n": 0, "reason": "fewer than two different programs"}
        return []
    made: list[str] = []
    if s.input_source == "model" and s.extra_inputs:
        made = _model_inputs(run, s.extra_inputs)
        if len(made) < s.extra_inputs:
            run.notes.append(f"model-written generators gave {len(made)} input(s); the rest are mutations")
    from_model = len(made)
    if len(made) < s.extra_inputs:
        made += [i for i in mutated_inputs(run.problem, s.extra_inputs, s.seed) if i not in made]
        made = made[: s.extra_inputs]
    if not made and not public:
        run.notes.append(
            "no inputs to tell programs apart (no examples to mutate): clusters group identical code"
        )
    run.stages["inputs"] = {
        "source": s.input_source if made else "none",
        "n": len(made),
        "from_model": from_model,
        "public_inputs_too": len(public),
    }
    return public + made


# --- stages 5-7: cluster, rank, pick ----------------------------------------------------------------------
def _cluster_stage(run: _Run, survivors: list[Sample], inputs: list[str]) -> list[Cluster]:
    codes = list(dict.fromkeys(x.code for x in survivors))
    if inputs:
        signatures = dict(
            zip(
                codes,
                run.pool.map(
                    lambda code: judge.behaviour(run.sandbox, run.problem, code, inputs, run.limits), codes
                ),
                strict=True,
            )
        )
    else:
        signatures = {code: (code,) for code in codes}
    groups: dict[tuple, list[int]] = {}
    for sample in survivors:
        groups.setdefault(signatures[sample.code], []).append(sample.index)
    clusters = []
    for number, (signature, members) in enumerate(groups.items()):
        preview = [str(x)[:80] for x in signature[:3]] if inputs else ["(identical code)"]
        clusters.append(
            Cluster(
                id=number, size=len(members), members=members, representative=min(members), behaviour=preview
            )
        )
    run.stages["cluster"] = {"clusters": len(clusters), "programs": len(codes), "inputs": len(inputs)}
    return clusters


def _rank_and_pick(run: _Run, clusters: list[Cluster]) -> tuple[list[Cluster], list[Submission]]:
    with run.timer.stage("rank"):
        ranked = sorted(clusters, key=lambda c: (-c.size, c.representative))
        for new_id, cluster in enumerate(ranked):
            cluster.id = new_id
            for member in cluster.members:
                run.samples[member].cluster = new_id
    with run.timer.stage("pick"):
        submissions = []
        for rank, cluster in enumerate(ranked[: run.s.k], 1):
            rep = run.samples[cluster.representative]
            submissions.append(
                Submission(
                    rank=rank,
                    sample=rep.index,
                    cluster=cluster.id,
                    cluster_size=cluster.size,
                    public_passed=rep.public_passed,
                    public_total=rep.public_total,
                    code=rep.code or "",
                )
            )
    run.stages["rank"] = {"by": "cluster size, then earliest sample"}
    run.stages["pick"] = {"k": run.s.k, "submitted": len(submissions)}
    return ranked, submissions


# --- stage 8 (scoring only): hidden tests --------------------------------------------------------------------
def _score_stage(run: _Run, submissions: list[Submission]) -> None:
    mode = run.s.score
    if mode == "none" or not run.problem.has_hidden_tests:
        run.stages["score"] = {"run": False, "reason": "no hidden tests" if mode != "none" else "score=none"}
        return
    if mode == "all":
        codes = list(dict.fromkeys(x.code for x in run.samples if x.runnable))
    else:
        codes = list(dict.fromkeys(sub.code for sub in submissions))
    reports = run.pool.map(lambda code: judge.run_hidden(run.sandbox, run.problem, code, run.limits), codes)
    passed = {code: report.all_passed for code, report in zip(codes, reports, strict=True)}
    for sample in run.samples:
        if sample.runnable and sample.code in passed:
            sample.hidden_passed = passed[sample.code]
        elif mode == "all":
            sample.hidden_passed = False
    for sub in submissions:
        sub.hidden_passed = passed.get(sub.code)
    run.stages["score"] = {
        "run": True,
        "programs": len(codes),
        "passed_programs": sum(passed.values()),
        "samples_passing": sum(bool(x.hidden_passed) for x in run.samples),
    }


# --- the whole pipeline ----------------------------------------------------------------------------------------
def solve_events(problem: Problem, sampler: Sampler, sandbox: Sandbox, settings: Settings) -> Iterator[Event]:
    """Run every stage on ``problem``; yield events, the :class:`CodeGenResult` last."""
    if settings.input_source not in SOURCES or settings.score not in SCORE_MODES:
        raise ValueError(f"input_source must be one of {SOURCES}; score one of {SCORE_MODES}")
    run = _Run(problem, sampler, sandbox, settings)
    try:
        yield from _sample_stage(run, build_prompt(problem, run.style))
        run.stages["extract"] = _extract_report(run)
        survivors, run.stages["filter"] = _filter_report(run)
        yield Event("stage", stage="filter", info=run.stages["filter"])
        with run.timer.stage("inputs"):
            inputs = _inputs_stage(run, survivors)
        with run.timer.stage("cluster"):
            clusters = _cluster_stage(run, survivors, inputs) if survivors else []
        if not survivors:
            run.stages["cluster"] = {"clusters": 0, "programs": 0, "inputs": 0}
        yield Event("stage", stage="cluster", info=run.stages["cluster"])
        clusters, submissions = _rank_and_pick(run, clusters)
        with run.timer.stage("score"):
            _score_stage(run, submissions)
        result = CodeGenResult(
            problem=problem.summary(),
            style=run.style,
            submissions=submissions,
            samples=run.samples,
            clusters=clusters,
            stages=run.stages,
            extra_inputs=inputs[len(problem.public) :],
            notes=run.notes,
            settings=asdict(settings),
            timings={k: round(v, 2) for k, v in run.timer.ms.items()},
        )
        yield Event("result", result=result)
    finally:
        run.close()


def solve(
    problem: Problem, sampler: Sampler, sandbox: Sandbox, settings: Settings | None = None
) -> CodeGenResult:
    """:func:`solve_events` without the events."""
    for event in solve_events(problem, sampler, sandbox, settings or Settings()):
        if event.kind == "result":
            assert event.result is not None
            return event.result
    raise RuntimeError("the pipeline ended without a result")
