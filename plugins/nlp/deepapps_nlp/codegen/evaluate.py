"""``deepapps eval code-generation`` and ``deepapps bench code-generation``.

Evaluation runs the whole pipeline on every problem and scores every sample on the hidden tests:

- ``pass@k`` for k = 1 and 10, the unbiased estimator of Chen et al. (2021):
  ``1 - C(n-c, k) / C(n, k)`` per problem (n samples, c correct), averaged; computed as the
  product ``prod_{i=n-c+1..n} (1 - k/i)``, which never overflows;
- AlphaCode's ``k@n``: the share of problems solved by at least one of the k submissions picked
  after filtering and clustering the same n samples (so it is directly comparable to pass@k);
- how the filter did: the share of samples kept, and pass@1 among the kept ones.

CPU time is the process's own plus its sandboxed children's (``resource.getrusage``).
"""

from __future__ import annotations

import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deepapps import BenchReport, EvalReport, ModelRef
from deepapps.runtime.progress import progress

from .pipeline import CodeGenResult, Settings, solve
from .problems import HUMANEVAL, Problem, load_dataset_problems
from .sandbox import Limits, Sandbox

TASK = "code-generation"
PASS_KS = (1, 10)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``n`` samples of which ``c`` are correct."""
    if n <= 0:
        return 0.0
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def problem_record(result: CodeGenResult, k: int) -> dict[str, Any]:
    """One problem's numbers: samples, correct samples, filter, and whether k submissions solve it."""
    samples = result.samples
    correct = sum(bool(s.hidden_passed) for s in samples)
    kept = [s for s in samples if s.passed_filter]
    return {
        "id": result.problem.get("id"),
        "n": len(samples),
        "correct": correct,
        "with_code": sum(s.runnable for s in samples),
        "public_examples": result.problem.get("public_examples", 0),
        "kept_by_filter": len(kept),
        "kept_correct": sum(bool(s.hidden_passed) for s in kept),
        "filter_fallback": bool(result.stages.get("filter", {}).get("fallback")),
        "clusters": len(result.clusters),
        "submissions": len(result.submissions),
        "solved_by_submissions": any(bool(s.hidden_passed) for s in result.submissions[:k]),
        "top1_solved": bool(result.submissions) and bool(result.submissions[0].hidden_passed),
        "sample_ms": round(result.timings.get("sample", 0.0), 1),
    }


def summarize(records: Sequence[dict[str, Any]], n: int, k: int) -> dict[str, Any]:
    """The eval metrics from per-problem records (see the module docstring)."""
    count = len(records)
    metrics: dict[str, Any] = {}
    for kk in PASS_KS:
        if all(r["n"] >= kk for r in records) and count:
            metrics[f"pass@{kk}"] = round(
                statistics.fmean(pass_at_k(r["n"], r["correct"], kk) for r in records), 4
            )
    if count:
        metrics[f"{k}@{n}"] = round(sum(r["solved_by_submissions"] for r in records) / count, 4)
        metrics[f"1@{n}"] = round(sum(r["top1_solved"] for r in records) / count, 4)
        # as if the filter had no fallback: a problem where nothing passed every example gets no submission
        strict = sum(r["solved_by_submissions"] and not r["filter_fallback"] for r in records)
        metrics[f"{k}@{n}_strict_filter"] = round(strict / count, 4)
        metrics["solved_by_any_sample"] = round(sum(r["correct"] > 0 for r in records) / count, 4)
        total = sum(r["n"] for r in records) or 1
        kept = sum(r["kept_by_filter"] for r in records)
        metrics["samples_with_code"] = round(sum(r["with_code"] for r in records) / total, 4)
        metrics["samples_kept_by_filter"] = round(kept / total, 4)
        metrics["pass@1_of_kept_samples"] = (
            round(sum(r["kept_correct"] for r in records) / kept, 4) if kept else 0.0
        )
        metrics["problems_with_public_examples"] = sum(r["public_examples"] > 0 for r in records)
        metrics["problems_filter_fallback"] = sum(r["filter_fallback"] for r in records)
    return metrics


def evaluate(
    model: ModelRef,
    dataset: str | None,
    split: str,
    limit: int | None,
    device: str,
    precision: str,
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
    filter_fallback: bool,
) -> EvalReport:
    """pass@1, pass@10 and k@n of ``model`` on ``dataset`` (HumanEval by default; see the module doc)."""
    import deepapps

    name = dataset or HUMANEVAL
    problems = load_dataset_problems(name, limit)
    settings = Settings(n=n, k=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                        batch_size=batch_size, seed=seed, extra_inputs=extra_inputs, input_source=input_source,
                        timeout=timeout, memory_mb=memory_mb, workers=workers, prompt_style=prompt_style,
                        filter_fallback=filter_fallback, score="all")  # fmt: skip
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    runner = deepapps.load(TASK, model, device=device, precision=precision)
    records, sample_s = _run_problems(problems, runner.sampler, settings, f"{TASK} on {name}")
    metrics = summarize(records, n, k)
    cpu = _cpu_seconds() - cpu0
    metrics.update(cpu_seconds=round(cpu, 1), cpu_seconds_per_problem=round(cpu / max(1, len(problems)), 2),
                   sampling_seconds=round(sample_s, 1))  # fmt: skip
    shown = ("n", "k", "temperature", "top_p", "max_tokens", "seed", "prompt_style", "filter_fallback",
             "input_source")  # fmt: skip
    extra = {"settings": {key: getattr(settings, key) for key in shown}, "problems": records,
             "threads": os.environ.get("DEEPAPPS_THREADS")}  # fmt: skip
    return EvalReport(task=TASK, model=model.name, dataset=name, split=split, n=len(problems), metrics=metrics,
                      seconds=time.perf_counter() - t0, extra=extra)  # fmt: skip


def _run_problems(problems: Sequence[Problem], sampler: Any, settings: Settings, desc: str):
    """Per-problem records (see :func:`problem_record`) and the seconds spent sampling."""
    sandbox = Sandbox(settings.limits())
    records, sample_s = [], 0.0
    bar = progress(problems, desc=desc, unit="problem")
    for problem in bar:
        result = solve(problem, sampler, sandbox, settings)
        records.append(problem_record(result, settings.k))
        sample_s += result.timings.get("sample", 0.0) / 1e3
        bar.set_postfix(solved=sum(r["correct"] > 0 for r in records),
                        submitted_solved=sum(r["solved_by_submissions"] for r in records))  # fmt: skip
    return records, sample_s


def score_reference(
    problems: Sequence[Problem],
    completions: dict[str, str] | None = None,
    sandbox: Sandbox | None = None,
    workers: int = 2,
) -> dict[str, bool]:
    """Hidden-test verdict of each problem's reference solution (or of ``completions[id]``, a
    whole program): the harness check that canonical solutions pass and broken ones fail."""
    from .judge import run_hidden

    box = sandbox or Sandbox(Limits(timeout=10))

    def one(problem: Problem) -> bool:
        code = (completions or {}).get(problem.id, problem.reference or "")
        return run_hidden(box, problem, code).all_passed

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip([p.id for p in problems], pool.map(one, problems), strict=True))


# --- bench ------------------------------------------------------------------------------------------------
BENCH_PROGRAM = "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"


def _sandbox_latencies(sandbox: Sandbox, runs: int, concurrency: int) -> tuple[list[float], float]:
    """Per-execution wall times (ms) and the executions/s sustained at ``concurrency``."""
    jobs = [(BENCH_PROGRAM, f"{i} {i + 1}\n") for i in range(runs)]
    t0 = time.perf_counter()
    verdicts = sandbox.map(jobs, workers=concurrency)
    elapsed = time.perf_counter() - t0
    bad = [v for v in verdicts if not v.ok]
    if bad:
        raise RuntimeError(
            f"bench program failed in the sandbox: {bad[0].status} {bad[0].reason} {bad[0].stderr[-200:]}"
        )
    return [v.total_s * 1e3 for v in verdicts], runs / elapsed


def _bare_python_ms(python: str, runs: int) -> float:
    """Median wall time of the same program in a bare ``python -I -S`` (no sandbox), for comparison."""
    import subprocess

    times = []
    for i in range(runs):
        t = time.perf_counter()
        subprocess.run(
            [python, "-I", "-S", "-c", BENCH_PROGRAM],
            input=f"{i} 1\n".encode(),
            capture_output=True,
            check=True,
        )
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def bench(
    model: ModelRef,
    device: str,
    precision: str,
    runs: int,
    concurrency: list[int],
    samples: int,
    max_tokens: int,
) -> BenchReport:
    """Sandbox overhead per execution (p50/p95), executions/s per concurrency level, and (samples > 0)
    sampling speed of the model."""
    t0 = time.perf_counter()
    sandbox = Sandbox(Limits(timeout=10))
    python = sandbox.python
    _sandbox_latencies(sandbox, 2, 1)  # warm-up
    report = BenchReport(task=TASK, model=model.name, figures={}, seconds=0.0)
    bare = _bare_python_ms(python, min(runs, 20))
    report.add("bare_python_ms_p50", round(bare, 1), "ms", what="python -I -S, same program, no sandbox")
    for level in sorted(set(concurrency)):
        lat, rate = _sandbox_latencies(sandbox, runs, level)
        report.add(f"sandbox_exec_ms_p50@{level}", round(statistics.median(lat), 1), "ms", n=runs)
        report.add(f"sandbox_exec_ms_p95@{level}", round(_percentile(lat, 95), 1), "ms", n=runs)
        report.add(f"sandbox_execs_per_s@{level}", round(rate, 2), "execs/s", n=runs)
    report.add(
        "sandbox_overhead_ms_p50",
        round(report.figures["sandbox_exec_ms_p50@1"]["value"] - bare, 1),
        "ms",
        what="sandboxed p50 at concurrency 1 minus bare python p50",
    )
    if samples:
        _bench_sampling(report, model, device, precision, samples, max_tokens)
    report.seconds = time.perf_counter() - t0
    report.setup = {
        "program": "sum of stdin integers (python -I -S)",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": python,
        "isolation": _isolation(sandbox),
        "load_average": os.getloadavg(),
    }
    return report


def _isolation(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.run("print(1)").isolation


def _bench_sampling(
    report: BenchReport, model: ModelRef, device: str, precision: str, samples: int, max_tokens: int
) -> None:
    import deepapps

    from .problems import load_humaneval
    from .sampling import build_prompt

    runner = deepapps.load(TASK, model, device=device, precision=precision)
    problem = load_humaneval(limit=1)[0]
    prompt = build_prompt(problem, runner.sampler.style_for(problem))
    t, cpu = time.perf_counter(), _cpu_seconds()
    tokens = sum(
        s.tokens
        for batch in runner.sampler.sample(prompt, samples, 0.8, 0.95, max_tokens, 0, min(samples, 10))
        for s in batch
    )
    elapsed, cpu = time.perf_counter() - t, _cpu_seconds() - cpu
    report.add(
        "sampling_tokens_per_s", round(tokens / elapsed, 1), "tokens/s", samples=samples, tokens=tokens
    )
    report.add("sampling_s_per_sample", round(elapsed / samples, 2), "s", cpu_s=round(cpu, 1))
