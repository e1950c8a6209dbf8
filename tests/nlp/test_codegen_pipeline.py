"""The code-generation pipeline, stage by stage, with a scripted sampler (no model): filtering,
clustering, ranking, picking, streamed events, and bad samples that must not crash anything."""

from __future__ import annotations

import json

import pytest

from deepapps_nlp.codegen import extract, inputs
from deepapps_nlp.codegen.evaluate import pass_at_k, summarize
from deepapps_nlp.codegen.pipeline import STAGES, Settings, solve, solve_events
from deepapps_nlp.codegen.problems import Example, Problem, load_problem, parse_problem_text
from deepapps_nlp.codegen.sampling import ReplaySampler, SampleText, build_prompt
from deepapps_nlp.codegen.sandbox import Limits, Sandbox

ADD_PROMPT = '''def add(x: int, y: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(5, 7)
    12
    """
'''

STDIO_STATEMENT = """Read two integers a and b and print a + b.

Example input:
3 4
Example output:
7

Example input:
10 -2
Example output:
8
"""


def block(code: str) -> str:
    return f"Here you go:\n```python\n{code}\n```\nThat's it."


class ScriptedSampler:
    """Returns the given texts in order, ``batch_size`` at a time."""

    name = "scripted"

    def __init__(self, texts, style="chat"):
        self.texts, self.style, self.prompts = list(texts), style, []

    def style_for(self, problem):
        return self.style

    def sample(self, prompt, n, temperature, top_p, max_tokens, seed, batch_size):
        self.prompts.append(prompt)
        texts = self.texts[:n]
        for i in range(0, len(texts), batch_size):
            yield [SampleText(t, tokens=len(t.split())) for t in texts[i : i + batch_size]]


@pytest.fixture(scope="module")
def box():
    return Sandbox(Limits(timeout=3, memory_mb=256, output_kb=64))


def settings(**kw):
    base = dict(n=20, k=3, batch_size=4, extra_inputs=6, timeout=3, memory_mb=256, workers=2)
    return Settings(**{**base, **kw})


RIGHT = "def add(x, y):\n    return x + y"
RIGHT_TOO = "def add(x, y):\n    return sum([x, y])"
SMALL_ONLY = "def add(x, y):\n    if x > 5 or y > 7:\n        return 0\n    return x + y"
WRONG = "def add(x, y):\n    return x * y"


def test_filter_cluster_rank_pick_on_a_function_problem(box):
    problem = parse_problem_text(ADD_PROMPT, problem_id="add")
    texts = (
        [block(RIGHT)] * 3
        + [block(RIGHT_TOO)] * 2
        + [block(WRONG)] * 4
        + [block("def add(x, y):\n    return 5")]
    )
    result = solve(problem, ScriptedSampler(texts), box, settings())
    assert [s.index for s in result.samples] == list(range(10))
    assert [s.passed_filter for s in result.samples] == [True] * 5 + [False] * 5
    assert result.samples[1].duplicate_of == 0 and result.samples[4].duplicate_of == 3
    # right and right-too behave the same on every generated input: one cluster of 5
    assert len(result.clusters) == 1 and result.clusters[0].size == 5
    assert len(result.submissions) == 1
    sub = result.submissions[0]
    assert (sub.rank, sub.sample, sub.cluster_size, sub.public_passed, sub.public_total) == (1, 0, 5, 2, 2)
    assert result.stages["filter"] == {
        "skipped": False,
        "examples": 2,
        "kept": 5,
        "fallback": False,
        "statuses": {"ok": 10},
    }
    assert len(result.extra_inputs) == 6 and all(c.startswith("add(") for c in result.extra_inputs)
    assert set(result.timings) == set(STAGES)
    assert result.to_dict()["submissions"][0]["code"].startswith("def add")


def test_clusters_split_programs_that_differ_on_generated_inputs(box):
    problem = parse_problem_text(ADD_PROMPT, problem_id="add")
    texts = [block(SMALL_ONLY)] * 3 + [block(RIGHT)] * 2
    result = solve(problem, ScriptedSampler(texts), box, settings(extra_inputs=12))
    assert all(s.passed_filter for s in result.samples)  # both pass add(2, 3) and add(5, 7)
    assert [(c.size, c.members) for c in result.clusters] == [(3, [0, 1, 2]), (2, [3, 4])]
    assert [s.sample for s in result.submissions] == [0, 3]  # the bigger cluster first, right or not
    same = solve(problem, ScriptedSampler(texts), box, settings(extra_inputs=0))
    assert [(c.size, c.members) for c in same.clusters] == [
        (5, [0, 1, 2, 3, 4])
    ]  # examples alone cannot tell


def test_largest_cluster_ranks_first_and_k_caps_submissions(box):
    problem = parse_problem_text(STDIO_STATEMENT, problem_id="sum")
    plus = "a, b = map(int, input().split())\nprint(a + b)"
    plus_alt = "import sys\nprint(sum(map(int, sys.stdin.read().split())))"
    odd = "a, b = map(int, input().split())\nprint(a + b if a + b != 5 else 6)"
    texts = [block(odd)] + [block(plus)] * 2 + [block(plus_alt)] * 2
    result = solve(problem, ScriptedSampler(texts), box, settings(k=1, extra_inputs=15))
    assert result.problem["kind"] == "stdio" and result.stages["filter"]["kept"] == 5
    assert result.clusters[0].size == 4 and 0 not in result.clusters[0].members
    assert len(result.submissions) == 1 and result.submissions[0].sample == 1


def test_no_examples_skips_the_filter_and_says_so(box):
    problem = parse_problem_text("Print the word hello.", problem_id="hello")
    assert problem.kind == "stdio" and problem.public == []
    result = solve(problem, ScriptedSampler([block("print('hello')"), block("print('hi')")]), box, settings())
    assert result.stages["filter"]["skipped"] is True
    assert any("no public examples" in note for note in result.notes)
    assert all(s.passed_filter is None for s in result.samples)
    assert len(result.submissions) == 2  # identical code only can share a cluster without inputs


def test_bad_samples_are_marked_and_never_crash(box):
    problem = parse_problem_text(STDIO_STATEMENT, problem_id="sum")
    texts = [
        "I am sorry, I cannot help with that.",  # no code
        block("a, b = map(int, input().split()\nprint(a + b)"),  # does not parse
        block("import sys\nsys.stdout.buffer.write(b'\\xff\\xfe')"),  # not UTF-8
        block("while True:\n    print('x' * 100000)"),  # floods output
        block("raise RuntimeError('crash')"),  # crashes
        block("while True:\n    pass"),  # loops
        "",  # empty
    ]
    result = solve(problem, ScriptedSampler(texts), box, settings(timeout=1))
    kinds = [s.extract for s in result.samples]
    assert kinds == ["no_code", "syntax_error", "ok", "ok", "ok", "ok", "no_code"]
    assert "line 1" in result.samples[1].extract_error
    utf8, flood, crash, loop = result.samples[2:6]
    assert not utf8.stdout_utf8 and "not valid UTF-8" in " ".join(utf8.public_errors)
    assert flood.public_status == "killed" and flood.output_truncated
    assert crash.public_status == "error" and loop.public_status == "timeout"
    assert all(s.passed_filter in (False, None) for s in result.samples)
    notes = " ".join(result.notes)
    for words in ("held no code", "did not parse", "not valid UTF-8", "output cap", "no sample passed"):
        assert words in notes


def test_a_model_that_returns_no_code_gives_no_submission(box):
    problem = parse_problem_text(ADD_PROMPT, problem_id="add")
    result = solve(problem, ScriptedSampler(["Sure! Addition is fun."] * 4), box, settings())
    assert result.submissions == [] and result.clusters == []
    assert "no sample produced a program" in " ".join(result.notes)
    assert result.summary().startswith("4 samples -> 0 with code")


def test_events_stream_each_sample_before_the_result(box):
    problem = parse_problem_text(ADD_PROMPT, problem_id="add")
    events = list(solve_events(problem, ScriptedSampler([block(RIGHT), block(WRONG)] * 3), box, settings()))
    kinds = [e.kind for e in events]
    assert kinds.count("sample") == 6 and kinds[-1] == "result"
    assert kinds.index("result") > max(i for i, k in enumerate(kinds) if k == "sample")
    assert [e.sample.passed_filter for e in events if e.kind == "sample"] == [True, False] * 3
    assert {e.stage for e in events if e.kind == "stage"} == {"sample", "filter", "cluster"}


def test_hidden_tests_score_submissions_only_on_request(box):
    problem = load_problem("mini-contests:sum-two")
    right = "a, b = map(int, input().split())\nprint(a + b)"
    result = solve(problem, ScriptedSampler([block(right)] * 2), box, settings(score="submissions"))
    assert result.submissions[0].hidden_passed is True and result.solved is True
    assert result.samples[0].hidden_passed is True
    result = solve(problem, ScriptedSampler([block(right)]), box, settings(score="none"))
    assert result.submissions[0].hidden_passed is None and result.solved is None


# --- stages in isolation ---------------------------------------------------------------------------------
def test_extract_chat_blocks_and_context():
    problem = parse_problem_text(
        "from typing import List\n\n\ndef helper(x):\n    return x\n\n\n"
        'def total(xs: List[int]) -> int:\n    """Sum.\n    >>> total([1, 2])\n    3\n    """\n'
    )
    text = (
        "Sure.\n```python\ndef total(xs):\n    return sum(helper(x) for x in xs)\n\nprint(total([1]))\n```\n"
    )
    got = extract.extract_code(text, problem, "chat")
    assert got.status == "ok" and got.dropped_statements == 1
    assert (
        got.code.startswith("from typing import List")
        and "def helper" in got.code
        and "print(" not in got.code
    )
    unclosed = extract.extract_code("```python\ndef total(xs):\n    return sum(xs)", problem, "chat")
    assert unclosed.status == "ok" and "return sum(xs)" in unclosed.code
    assert extract.extract_code("No idea, sorry.", problem, "chat").status == "no_code"


def test_extract_completion_truncates_at_the_next_top_level_statement():
    problem = parse_problem_text(ADD_PROMPT)
    got = extract.extract_code(
        "    return x + y\n\n\ndef other():\n    pass\nprint(1)", problem, "completion"
    )
    assert got.status == "ok" and got.code == ADD_PROMPT + "    return x + y\n\n"
    assert extract.extract_code("\n#", problem, "completion").status == "no_code"
    assert extract.extract_code("    return (x +\n", problem, "completion").status == "syntax_error"


def test_prompts_for_each_style():
    problem = parse_problem_text(ADD_PROMPT, problem_id="add")
    chat = build_prompt(problem, "chat")
    assert "```python\ndef add" in chat.messages[0]["content"] and chat.problem_id == "add"
    assert build_prompt(problem, "completion").text == ADD_PROMPT


def test_mutated_inputs_are_new_deterministic_and_keep_counts():
    problem = parse_problem_text(ADD_PROMPT)
    first = inputs.mutated_inputs(problem, 8, seed=1)
    assert first == inputs.mutated_inputs(problem, 8, seed=1) and len(first) == 8
    assert not {c.replace(" ", "") for c in first} & {"add(2,3)", "add(5,7)"}
    stdio = Problem(id="s", kind="stdio", text="", public=[Example("3\n1 2 3\n", "6\n")])
    for text in inputs.mutated_inputs(stdio, 10, seed=2):
        lines = text.split("\n")
        assert lines[0] == "3" and len(lines[1].split()) == 3  # the count stays, and so does the shape


def test_replay_sampler_reads_human_eval_samples(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"task_id": "add", "completion": "    return x + y\n"},
                {"task_id": "add", "completion": "    return x - y\n"},
                {"task_id": "other", "completion": "    pass\n"},
            ]
        )
        + "\n"
    )
    sampler = ReplaySampler(path)
    problem = parse_problem_text(ADD_PROMPT, problem_id="add")
    assert sampler.style_for(problem) == "completion"
    batches = list(sampler.sample(build_prompt(problem, "completion"), 5, 0.8, 0.95, 10, 0, 1))
    assert [b[0].text for b in batches] == ["    return x + y\n", "    return x - y\n"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json}\n")
    with pytest.raises(Exception, match="bad.jsonl:1"):
        ReplaySampler(bad)


def test_pass_at_k_matches_the_combinatorial_definition():
    from math import comb

    for n, c, k in [(20, 1, 1), (20, 3, 10), (10, 0, 1), (10, 10, 10), (5, 2, 1), (20, 15, 10)]:
        exact = 1 - comb(n - c, k) / comb(n, k) if n - c >= k else 1.0
        assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    records = [
        {
            "n": 10,
            "correct": 1,
            "with_code": 10,
            "public_examples": 1,
            "kept_by_filter": 2,
            "kept_correct": 1,
            "filter_fallback": False,
            "solved_by_submissions": True,
            "top1_solved": True,
        },
        {
            "n": 10,
            "correct": 0,
            "with_code": 5,
            "public_examples": 0,
            "kept_by_filter": 0,
            "kept_correct": 0,
            "filter_fallback": False,
            "solved_by_submissions": False,
            "top1_solved": False,
        },
    ]
    metrics = summarize(records, n=10, k=10)
    assert metrics["pass@1"] == 0.05 and metrics["pass@10"] == 0.5 and metrics["10@10"] == 0.5
    assert metrics["samples_with_code"] == 0.75 and metrics["pass@1_of_kept_samples"] == 0.5


class GeneratorSampler(ScriptedSampler):
    """Solutions for the problem prompt; an input-generator program for the generator prompt."""

    def sample(self, prompt, n, temperature, top_p, max_tokens, seed, batch_size):
        if prompt.problem_id.endswith("#generator"):
            gen = "import random\nprint(random.randint(100, 999), random.randint(100, 999))"
            yield [SampleText(block(gen)) for _ in range(n)]
            return
        yield from super().sample(prompt, n, temperature, top_p, max_tokens, seed, batch_size)


def test_inputs_from_model_written_generators_run_in_the_sandbox(box):
    problem = parse_problem_text(STDIO_STATEMENT, problem_id="sum")
    plus = "a, b = map(int, input().split())\nprint(a + b)"
    capped = "a, b = map(int, input().split())\nprint(min(a + b, 99))"
    result = solve(
        problem,
        GeneratorSampler([block(plus), block(capped)]),
        box,
        settings(input_source="model", extra_inputs=4),
    )
    assert result.stages["inputs"]["source"] == "model" and result.stages["inputs"]["from_model"] == 4
    assert all(100 <= int(x) <= 999 for text in result.extra_inputs for x in text.split())
    assert len(result.clusters) == 2  # the generated (large) inputs tell the capped program apart
