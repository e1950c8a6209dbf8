"""The generic page for a task whose plugin registered no page of its own.

It offers a model picker (with the model card and a pull button for missing weights), the
input the task asks for (image upload, file upload or text, from ``TaskSpec.input_kind``), one
widget per declared task option (typed, with its range and help), and shows ``result.plot()``
and ``result.to_dict()``. The model runs on the sidebar's device.
"""

from __future__ import annotations

import streamlit as st

from deepapps.registry import registry
from deepapps_ui import widgets


def render(task: str) -> None:
    """Draw the generic page of ``task``."""
    spec = registry.task(task)
    st.title(spec.title)
    st.caption(f"Task `{spec.name}` · domain {spec.domain} · plugin {spec.plugin or '-'} · generic page")
    if spec.description:
        st.markdown(spec.description)
    if spec.inputs or spec.outputs:
        st.markdown(
            widgets.md_table(["takes", "gives"], [[spec.inputs or "-", spec.outputs or "-"]]),
        )

    model = widgets.model_picker(spec.name, key=f"{spec.name}-model")
    if model is None:
        st.info("Type a model path or hub id, or pick a registered model.")
        return
    mspec = registry.model(model) if registry.has_model(model) else None
    if mspec is not None:
        with st.expander(f"Model card: {mspec.name}"):
            widgets.model_card(mspec, key=f"{spec.name}-card-pull", show_pull=False)
        if not widgets.pull_button(mspec, key=f"{spec.name}-pull"):
            return

    value = widgets.task_input(spec, key=f"{spec.name}-input")
    with st.expander("Options", expanded=False):
        options = widgets.options_form(spec, key=f"{spec.name}-options")
    load_options = {k: v for k, v in options.items() if _when(spec, k) == "load"}
    call_options = {k: v for k, v in options.items() if k not in load_options}
    clicked = st.button("Run", type="primary", key=f"{spec.name}-run", disabled=value is None)
    if value is None:
        st.caption("Give an input, then press Run.")
        return
    if not clicked:
        return
    with widgets.page_errors(f"Running `{spec.name}`"):
        with st.spinner(f"Running {spec.name} …"):
            runner = widgets.cached_runner(spec.name, model, **load_options)
            result = widgets.run_on_input(runner, value, **call_options)
        widgets.result_view(result)


def _when(spec, name: str) -> str:
    return next(o.when for o in spec.options if o.name == name)
