"""Scoring code generation: canonical HumanEval solutions score 1.0 and a broken set 0 in this harness,
filtering lifts k@n above pass@1 of the same samples, the task runs from the CLI and Python API,
and sampling from a (tiny, random) causal LM goes through the same pipeline."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import deepapps
from deepapps_nlp.codegen.evaluate import bench, score_reference
from deepapps_nlp.codegen.problems import load_humaneval, load_mini_contests

LIMIT = 4  # the CLI tests; the reference helper checks 12 problems, docs/codegen.md all 164


@pytest.fixture(scope="module")
def humaneval():
    return load_humaneval(limit=12)


def _cli(args):
    from deepapps.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _completion(problem):
    return problem.reference[len(problem.text) :]


def test_canonical_solutions_score_one_and_a_broken_set_zero(humaneval, tmp_path):
    canonical = _write(
        tmp_path / "canonical.jsonl",
        [{"task_id": p.id, "completion": _completion(p)} for p in humaneval[:LIMIT]],
    )
    broken = _write(
        tmp_path / "broken.jsonl",  # each canonical body with its return value dropped
        [
            {"task_id": p.id, "completion": _completion(p).replace("return ", "return None and ")}
            for p in humaneval[:LIMIT]
        ],
    )
    for path, expected in ((canonical, 1.0), (broken, 0.0)):
        out = _cli(
            [
                "eval",
                "code-generation",
                "--model",
                path,
                "--dataset",
                "humaneval",
                "--limit",
                str(LIMIT),
                "--n",
                "1",
                "--k",
                "1",
                "--json",
            ]
        )
        assert out.exit_code == 0, out.output
        report = json.loads(out.output)
        assert report["n"] == LIMIT and report["dataset"] == "humaneval"
        assert report["metrics"]["pass@1"] == expected and report["metrics"]["1@1"] == expected, path
        assert [p["correct"] for p in report["extra"]["problems"]] == [int(expected)] * LIMIT


def test_reference_scoring_helper_agrees(humaneval):
    assert all(score_reference(humaneval).values())
    wrong = {p.id: p.text + "    raise NotImplementedError\n" for p in humaneval}
    assert not any(score_reference(humaneval, wrong).values())


def test_filtering_lifts_the_solve_rate_above_pass_at_1(humaneval, tmp_path):
    """10 samples per problem, 2 right and 8 wrong: pass@1 is 0.2, but the filter keeps only the right
    ones, so the first submission solves every problem (1@10 = 10@10 = 1)."""
    chosen = [p for p in humaneval if p.public][:3]
    rows = []
    for p in chosen:
        rows += [{"task_id": p.id, "completion": "    return None\n"}] * 8
        rows += [{"task_id": p.id, "completion": _completion(p)}] * 2
    path = _write(tmp_path / "mixed.jsonl", rows)
    runner = deepapps.load("code-generation", path)
    report = deepapps.resolve(deepapps.registry.task("code-generation").evaluate)(
        model=deepapps.resolve_model("code-generation", path),
        dataset="humaneval",
        split="test",
        limit=3,
        device="cpu",
        precision="fp32",
        n=10,
        k=10,
        temperature=0.8,
        top_p=0.95,
        max_tokens=64,
        batch_size=10,
        seed=0,
        extra_inputs=4,
        input_source="mutate",
        timeout=5.0,
        memory_mb=512,
        workers=2,
        prompt_style="auto",
        filter_fallback=True,
    )
    assert runner.sampler.name.startswith("replay:")
    m = report.metrics
    assert m["pass@1"] == pytest.approx(0.2) and m["pass@10"] == 1.0
    assert m["1@10"] == 1.0 and m["10@10"] == 1.0 and m["pass@1_of_kept_samples"] == 1.0
    assert m["samples_kept_by_filter"] == pytest.approx(0.2)


def test_mini_contests_references_solve_everything(tmp_path):
    problems = load_mini_contests(limit=4)
    path = _write(tmp_path / "refs.jsonl", [{"task_id": p.id, "text": p.reference} for p in problems])
    out = _cli(
        [
            "eval",
            "code-generation",
            "--model",
            path,
            "--dataset",
            "mini-contests",
            "--limit",
            "4",
            "--n",
            "1",
            "--k",
            "1",
            "--json",
        ]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["metrics"]["pass@1"] == 1.0


def test_cli_run_and_bad_input_before_any_model_loads(tmp_path):
    problem = load_mini_contests(limit=1)[0]
    path = _write(tmp_path / "one.jsonl", [{"task_id": "*", "text": f"```python\n{problem.reference}```"}])
    out = _cli(
        ["run", "code-generation", f"mini-contests:{problem.id}", "--model", path, "--n", "2", "--json"]
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)[0]
    assert result["task"] == "code-generation" and result["source"] == problem.id
    assert result["submissions"][0]["hidden_passed"] is True and len(result["samples"]) == 1
    assert {"load", "sample", "extract", "filter", "inputs", "cluster", "rank", "pick", "total"} <= set(
        result["timings"]
    )
    bad = _cli(["run", "code-generation", "mini-contests:no-such-problem", "--model", "/nonexistent.jsonl"])
    assert bad.exit_code != 0 and "no problem 'no-such-problem'" in bad.output
    typo = _cli(["run", "code-generation", "mini-contests:sum-two", "--temprature", "0.5"])
    assert typo.exit_code != 0 and "did you mean --temperature" in typo.output


def test_sampling_from_a_tiny_causal_lm_runs_the_pipeline(tiny_model_dir):
    runner = deepapps.load("code-generation", str(tiny_model_dir), device="cpu")
    problem = "Print a + b.\nExample input:\n1 2\nExample output:\n3\n"  # fits the tiny 256-token window
    events = list(runner.events(problem, n=3, batch_size=3, max_tokens=12, score="none"))
    result = events[-1].result
    assert [e.kind for e in events].count("sample") == 3
    assert len(result.samples) == 3 and all(0 < s.tokens <= 12 for s in result.samples)
    assert result.stages["sample"]["n"] == 3 and result.model == runner.model_name
    assert result.timings["load"] >= 0 and result.timings["sample"] > 0


def test_bench_reports_sandbox_overhead_and_concurrency():
    report = bench(
        deepapps.resolve_model("code-generation", None),
        "cpu",
        "fp32",
        runs=3,
        concurrency=[1, 2],
        samples=0,
        max_tokens=16,
    ).to_dict()
    figures = report["figures"]
    for name in (
        "sandbox_exec_ms_p50@1",
        "sandbox_exec_ms_p95@2",
        "sandbox_execs_per_s@2",
        "bare_python_ms_p50",
    ):
        assert figures[name]["value"] > 0, name
    assert figures["sandbox_exec_ms_p95@1"]["value"] >= figures["sandbox_exec_ms_p50@1"]["value"]
    assert report["setup"]["isolation"]


def test_python_api_takes_one_problem_or_a_list(tmp_path):
    path = _write(tmp_path / "one.jsonl", [{"task_id": "*", "text": "print('hello')"}])
    solver = deepapps.load("code-generation", path, n=1, score="none")
    single = solver("Print hello.")
    pair = solver(["Print hello.", "Print hello, please."], kind="stdio")
    assert single.submissions[0].code == "print('hello')\n" and len(pair) == 2
    assert [r.source for r in pair] == ["Print hello.", "Print hello, please."]
    with pytest.raises(deepapps.OptionError, match="did you mean --temperature"):
        solver("Print hello.", temprature=1.0)
