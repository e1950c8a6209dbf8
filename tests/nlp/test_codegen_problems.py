"""Problems for code generation: HumanEval's public examples read from docstrings, statements with
example sections, the bundled stdin/stdout set, and one-line errors for inputs that are not problems."""

from __future__ import annotations

import json

import pytest

from deepapps import InputError
from deepapps_nlp.codegen import judge
from deepapps_nlp.codegen.problems import (
    doc_examples,
    load_humaneval,
    load_mini_contests,
    load_problem,
    parse_problem_text,
    statement_examples,
)
from deepapps_nlp.codegen.sandbox import Limits, Sandbox

# HumanEval docstrings whose own examples disagree with the canonical solution (47, 116, 148 are
# known errors of the dataset; 130's docstring states the recurrence as "tri(1) = 3" lines)
WRONG_DOC_EXAMPLES = {"HumanEval/47", "HumanEval/116", "HumanEval/130", "HumanEval/148"}


@pytest.fixture(scope="module")
def humaneval():
    return {p.id: p for p in load_humaneval()}


@pytest.fixture(scope="module")
def box():
    return Sandbox(Limits(timeout=10))


def test_humaneval_has_164_problems_with_public_examples_from_their_docstrings(humaneval):
    assert len(humaneval) == 164
    with_examples = [p for p in humaneval.values() if p.public]
    assert len(with_examples) >= 150
    first = humaneval["HumanEval/0"]
    assert first.kind == "function" and first.entry_point == "has_close_elements" and first.check
    assert [(e.input, e.output) for e in first.public] == [
        ("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False"),
        ("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True"),
    ]


@pytest.mark.parametrize(
    "task_id, call, want",
    [
        ("HumanEval/53", "add(2, 3)", "5"),  # >>> doctest
        ("HumanEval/68", "pluck([4,2,3])", "[2, 1]"),  # Input: / Output:
        ("HumanEval/78", 'hex_key(num = "AB")', "1"),  # For num = ... the output should be
        ("HumanEval/102", "choose_num(12, 15)", "14"),  # f(x) = y
        ("HumanEval/120", "maximum(arr = [-3, -4, 5], k = 3)", "[-4, -3, 5]"),  # Input: arr = ..., k = ...
    ],
)
def test_each_docstring_example_format(humaneval, task_id, call, want):
    assert (call, want) == (humaneval[task_id].public[0].input, humaneval[task_id].public[0].output)


def test_broken_doc_examples_are_dropped():
    doc = 'Check.\n    is_happy(a) => False\n    is_happy("abc") => True\n    f(1) => true'
    assert [(e.input, e.output) for e in doc_examples(doc, "is_happy")] == [('is_happy("abc")', "True")]
    assert [(e.input, e.output) for e in doc_examples("f(1) => true", "f")] == [("f(1)", "True")]


def test_canonical_solutions_pass_their_parsed_examples(humaneval, box):
    """The parser reads what the docstrings mean: canonical solutions pass their public examples
    (a fixed sample covering every example format, plus the known-bad ones)."""
    ids = [f"HumanEval/{i}" for i in (0, 53, 68, 78, 102, 107, 120, 143)]
    ids += sorted(WRONG_DOC_EXAMPLES)
    jobs = [humaneval[i] for i in ids]
    reports = [judge.run_public(box, p, p.reference) for p in jobs]
    for problem, report in zip(jobs, reports, strict=True):
        if problem.id in WRONG_DOC_EXAMPLES:
            assert not report.all_passed, problem.id
        else:
            assert report.all_passed, (problem.id, [o.error or o.got for o in report.outcomes])


def test_statement_example_sections_in_several_spellings():
    text = (
        "Add numbers.\n\nSample Input 1\n```\n1 2\n```\nSample Output 1\n```\n3\n```\n"
        "## Input\n4 5\n\n## Output\n9\n\n**Example input:** 7 8\n**Example output:** 15\n"
        "Input consists of two integers.\n"
    )
    assert [(e.input, e.output) for e in statement_examples(text)] == [
        ("1 2\n", "3\n"),
        ("4 5\n", "9\n"),
        ("7 8\n", "15\n"),
    ]


def test_mini_contests_are_at_least_20_with_public_and_hidden_tests():
    problems = load_mini_contests()
    assert len(problems) >= 20 and len({p.id for p in problems}) == len(problems)
    for p in problems:
        assert p.kind == "stdio" and len(p.public) >= 2 and len(p.hidden) >= 5 and p.reference
        assert statement_examples(p.text) == p.public  # the statement shows exactly its public examples
        assert not {e.input for e in p.public} & {e.input for e in p.hidden}


def test_mini_contest_references_pass_every_test(box):
    """Each reference solution, on its public and hidden tests (one batched run per problem)."""
    problems = load_mini_contests()
    jobs = [(p, p.public + p.hidden) for p in problems]
    outputs = box.map(
        [
            (
                judge._STDIO_BATCH.format(
                    mark="@@m@@", code=p.reference, inputs=[t.input for t in tests], per_run=2.0
                ),
                None,
            )
            for p, tests in jobs
        ],
        workers=2,
    )
    for (problem, tests), verdict in zip(jobs, outputs, strict=True):
        got = json.loads(verdict.stdout.split("@@m@@")[-1])
        assert got == [" ".join(t.output.split()) for t in tests], problem.id


def test_load_problem_from_references_files_and_text(tmp_path, humaneval):
    assert load_problem("humaneval:53").id == "HumanEval/53"
    assert load_problem("mini-contests:fizzbuzz").title == "FizzBuzz"
    spec = tmp_path / "p.json"
    spec.write_text(
        json.dumps(
            {
                "id": "twice",
                "statement": "Print twice the number.",
                "examples": [{"input": "2\n", "output": "4\n"}],
                "tests": [["5\n", "10\n"]],
            }
        )
    )
    loaded = load_problem(str(spec))
    assert (loaded.id, loaded.kind, len(loaded.public), len(loaded.hidden)) == ("twice", "stdio", 1, 1)
    py = tmp_path / "f.py"
    py.write_text(humaneval["HumanEval/53"].text)
    assert load_problem(str(py)).entry_point == "add"
    assert parse_problem_text("def f(x):\n    pass\n", kind="stdio").kind == "stdio"


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("humaneval:HumanEval/999", "no problem"),
        ("mini-contests:nope", "no problem"),
        ("x" * 30_000, "limit"),
    ],
)
def test_bad_problems_get_one_line_errors(value, message):
    with pytest.raises(InputError, match=message):
        load_problem(value)


def test_bad_problem_files(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{oops")
    with pytest.raises(InputError, match="invalid JSON"):
        load_problem(str(bad_json))
    latin = tmp_path / "latin.md"
    latin.write_bytes("caf\xe9 problem".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_problem(str(latin))
    with pytest.raises(InputError, match="defines no function"):
        parse_problem_text("def f():\n    pass\n", entry_point="g")
