"""The driving page: pick a task and a policy (bundled, expert/rule-based, random), run an episode,
watch its video and metric plots, and compare two policies side by side on the same seed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from deepapps_ui import widgets

from . import catalog

KEY = "driving"


def _policy_column(task: str, slot: int, default: str | None) -> str | None:
    key = f"{KEY}-{task}-policy-{slot}"
    if default and key not in st.session_state:
        st.session_state[key] = default
    return widgets.model_picker(task, key=key, label=f"Policy {slot + 1}")


def _run(task: str, model: str, seed: int, variant: str, record: bool) -> dict:
    """Run one episode (and its video) and keep what the page shows."""
    runner = widgets.cached_runner(task, model)
    with tempfile.TemporaryDirectory(prefix="deepapps-driving-") as folder:
        video = Path(folder) / "episode.mp4" if record else None
        result = runner(seed, variant=variant, record=video)
        data = video.read_bytes() if video is not None else None
    result.video = None  # the temporary file is gone; the bytes are kept
    return {"result": result, "video": data}


def _show(run: dict) -> None:
    result = run["result"]
    st.markdown(f"**{result.policy}**: {result.outcome} after {result.steps} steps")
    if run["video"]:
        st.video(run["video"], format="video/mp4")
    rows = [[k, f"{v:.3g}" if isinstance(v, float) else v] for k, v in result.metrics.items()]
    st.markdown(widgets.md_table(["metric", "value"], rows))
    st.image(result.plot(), caption=f"{result.env_id} · seed {result.seed}")


def render(task: str = catalog.LANE_KEEPING) -> None:
    st.title("Driver assistance")
    st.caption(
        "Autopilot-style features on highway-env: each policy acts on the plain gymnasium observation of "
        "a deepapps/... environment. Episodes use held-out seeds (environment seed 1,000,000 + seed)."
    )
    task = st.selectbox("Task", catalog.TASKS, index=catalog.TASKS.index(task), key=f"{KEY}-task-{task}")
    info = catalog.info(task)
    left, mid, right = st.columns(3)
    variant = left.selectbox(
        "Environment",
        info.variant_names,
        key=f"{KEY}-{task}-variant",
        format_func=lambda n: f"{n}: {info.variant(n).env_id}",
    )
    seed = int(
        mid.number_input(
            "Episode seed",
            min_value=0,
            max_value=catalog.HELD_OUT_SEED_BASE - 1,
            value=0,
            step=1,
            key=f"{KEY}-{task}-seed",
        )
    )
    record = right.checkbox(
        "Record video",
        value=True,
        key=f"{KEY}-{task}-record",
        help="rendering costs most of an episode's time",
    )
    compare = st.checkbox("Compare two policies side by side", value=False, key=f"{KEY}-{task}-compare")
    defaults = [None, info.baseline or info.random]
    columns = st.columns(2 if compare else 1)
    models = []
    for slot, column in enumerate(columns):
        with column:
            models.append(_policy_column(task, slot, defaults[slot]))
    store = f"{KEY}-{task}-runs"
    if st.button("Run episode", type="primary", key=f"{KEY}-{task}-go"):
        runs = []
        for model in models:
            run = None
            if model is not None:
                with widgets.page_errors(f"Episode with `{model}`"), st.spinner(f"Driving {model} …"):
                    run = _run(task, model, seed, variant, record)
            runs.append(run)
        st.session_state[store] = runs
    for column, run in zip(columns, st.session_state.get(store, []), strict=False):
        if run is not None:
            with column:
                _show(run)


def render_lane_keeping() -> None:
    render(catalog.LANE_KEEPING)


def render_adaptive_cruise() -> None:
    render(catalog.ADAPTIVE_CRUISE)


def render_lane_change() -> None:
    render(catalog.LANE_CHANGE)


def render_parking() -> None:
    render(catalog.PARKING)
