"""The Code generation page, headless: pick a bundled problem, generate with recorded samples (a
.jsonl "model"), see the samples marked, the clusters and submissions, and run one in the sandbox."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

RIGHT = "a, b = map(int, input().split())\nprint(a + b)\n"
WRONG = "a, b = map(int, input().split())\nprint(a - b)\n"


def _page():
    from deepapps_nlp.codegen.page import render

    render()


@pytest.fixture
def replay(tmp_path):
    path = tmp_path / "samples.jsonl"
    rows = [{"task_id": "*", "text": f"```python\n{code}```"} for code in (RIGHT, WRONG, RIGHT)]
    rows.append({"task_id": "*", "text": "no code here, sorry"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_generate_shows_marked_samples_clusters_and_runs_a_submission(replay, text_of):
    from deepapps_nlp.codegen.page import EXAMPLES

    at = AppTest.from_function(_page, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "🧪 Code generation"
    at.sidebar.selectbox[0].set_value(at.sidebar.selectbox[0].options[-1]).run()  # "Other: a path"
    at.sidebar.text_input[0].set_value(str(replay)).run()
    at.selectbox(key="codegen-example").set_value("mini-contests · sum-two").run()
    assert "Read two integers a and b" in at.text_area[0].value
    at.number_input(key="codegen-n").set_value(4)
    at.number_input(key="codegen-k").set_value(3)
    at.button(key="codegen-generate").click().run()
    assert not at.exception, at.exception
    text = text_of(at)
    # the streamed table: two right samples pass, one is wrong, one holds no code
    assert "| 0 | ✓ | 2/2 examples |" in text and "| 1 | ✗ | 0/2 examples |" in text
    assert "| 2 | ✓ | 2/2 examples (= #0) |" in text and "| 3 | – | no code |" in text
    assert (
        "4 samples -> 3 with code -> 2 passed the examples -> 1 clusters -> 1 submissions -> solved" in text
    )
    assert "1 sample(s) held no code" in text
    assert at.expander[0].label.startswith("#1: sample 0, cluster of 2, 2/2 examples · hidden tests passed")
    assert EXAMPLES["mini-contests · sum-two"] == "mini-contests:sum-two"
    # run the submission in the sandbox on our own input
    at.text_area(key="codegen-run-stdin").set_value("40 2\n")
    at.button(key="codegen-run-button").click().run()
    assert not at.exception, at.exception
    assert any(c.value.strip() == "42" for c in at.code)
    assert "**ok** · exit 0" in text_of(at)


def test_pasted_problem_without_examples_says_the_filter_was_skipped(tmp_path, text_of):
    path = tmp_path / "hello.jsonl"
    path.write_text(json.dumps({"task_id": "*", "text": "print('hello')"}) + "\n")
    at = AppTest.from_function(_page, default_timeout=120)
    at.run()
    at.sidebar.selectbox[0].set_value(at.sidebar.selectbox[0].options[-1]).run()
    at.sidebar.text_input[0].set_value(str(path)).run()
    at.text_area[0].set_value("Print the word hello.").run()
    at.number_input(key="codegen-n").set_value(1)
    at.button(key="codegen-generate").click().run()
    assert not at.exception, at.exception
    assert "no public examples: the filter stage was skipped" in text_of(at)
