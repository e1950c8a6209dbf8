"""The home page: installed plugins (failed ones with their error), tasks, model cards, datasets."""

from __future__ import annotations

import streamlit as st

import deepapps
from deepapps.plugins import get_plugins
from deepapps.registry import registry
from deepapps_ui import widgets


def render() -> None:
    """Draw the home page. Each section survives the others failing."""
    st.title("deepapps")
    st.caption(f"deepapps {deepapps.__version__} · landmark deep-learning applications as plugins")
    with widgets.page_errors("Listing plugins"):
        plugins_section()
    with widgets.page_errors("Listing tasks"):
        tasks_section()
    with widgets.page_errors("Listing models"):
        models_section()
    with widgets.page_errors("Listing datasets"):
        datasets_section()


def plugins_section() -> None:
    plugins = get_plugins()
    failed = [p for p in plugins if p.status != "ok"]
    st.header("Plugins")
    if not plugins:
        st.info("No plugins are loaded (is DEEPAPPS_LOAD_PLUGINS set to an empty value?).")
        return
    st.markdown(f"{len(plugins)} installed, {len(plugins) - len(failed)} ok, {len(failed)} failed.")
    rows = [
        [
            p.name,
            p.version or "-",
            "ok" if p.status == "ok" else "FAILED",
            ", ".join(p.hooks) or "-",
            p.module,
        ]
        for p in plugins
    ]
    st.markdown(widgets.md_table(["plugin", "version", "status", "hooks", "module"], rows))
    for p in failed:
        st.error(f"Plugin **{p.name}** ({p.module}) failed: {p.error}")
        trace = getattr(p, "traceback", None)
        if trace:
            with st.expander(f"Traceback of {p.name}"):
                st.code(trace, language="text")


def tasks_section() -> None:
    st.header("Tasks")
    tasks = registry.tasks()
    if not tasks:
        st.info("No plugin registered a task.")
        return
    pages = {p.task for p in registry.ui_pages()}
    rows = [
        [
            t.name,
            t.title,
            t.domain,
            t.plugin,
            t.default_model or "-",
            ", ".join(t.to_dict()["verbs"]),
            "plugin page" if t.name in pages else "generic page",
        ]
        for t in tasks
    ]
    st.markdown(
        widgets.md_table(["task", "title", "domain", "plugin", "default model", "verbs", "page"], rows)
    )
    st.caption("Open a task from the navigation in the sidebar.")


def models_section() -> None:
    st.header("Models")
    models = registry.models()
    if not models:
        st.info("No plugin registered a model.")
        return
    for m in models:
        available = widgets.is_available(m)
        mark = "on this machine" if available else "not downloaded"
        with st.expander(f"{m.name} · {m.task} · {widgets.format_params(m.card.params)} params · {mark}"):
            widgets.model_card(m, key=f"home-pull-{m.name}")


def datasets_section() -> None:
    sets = registry.datasets()
    if not sets:
        return
    st.header("Datasets")
    rows = [[d.name, d.task, ", ".join(d.splits), d.license, d.size or "-", d.plugin] for d in sets]
    st.markdown(widgets.md_table(["dataset", "task", "splits", "license", "size", "plugin"], rows))
