"""Routing: one ``st.navigation`` with a Home page and one page per registered task.

Sections are the tasks' domains. A task's page is its plugin's ``UIPageSpec.render`` when
registered (``register_ui_pages``), else the generic page. A page that raises shows the error
on that page; the rest of the app keeps working. The page table of the current run is kept in
``st.session_state["deepapps_pages"]`` (url path -> title, section, task, kind) for tests and
debugging.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import streamlit as st

from deepapps import DeepAppsError
from deepapps.registry import registry
from deepapps.specs import UIPageSpec, resolve
from deepapps_ui import generic, home, widgets

HOME_SECTION = "deepapps"


@dataclass
class PageEntry:
    """One navigation entry: where it sits and what draws it."""

    url_path: str
    title: str
    section: str
    task: str | None
    kind: str  # "home", "plugin" or "generic"
    icon: str = ""
    plugin: str = ""


def page_entries() -> tuple[list[PageEntry], str | None]:
    """Every page the app shows, and the registry error (duplicate names...) if listing failed."""
    entries = [PageEntry("home", "Home", HOME_SECTION, None, "home", ":material/home:")]
    try:
        tasks = registry.tasks()
        pages = {p.task: p for p in registry.ui_pages()}
    except DeepAppsError as exc:
        return entries, str(exc)
    for task in tasks:
        page = pages.pop(task.name, None)
        entries.append(
            PageEntry(
                url_path=task.name,
                title=(page.title if page else task.title) or task.name,
                section=task.domain or task.plugin or "tasks",
                task=task.name,
                kind="plugin" if page else "generic",
                icon=page.icon if page else "",
                plugin=(page.plugin if page else task.plugin),
            )
        )
    for page in pages.values():  # a page for a task no plugin registered: still reachable
        entries.append(
            PageEntry(
                page.task, page.title, page.plugin or "pages", page.task, "plugin", page.icon, page.plugin
            )
        )
    return entries, None


def render_task_page(task: str) -> None:
    """Draw the page of ``task``: its plugin page, else the generic one; errors stay on the page."""
    page: UIPageSpec | None = None
    with widgets.page_errors(f"Page of task `{task}`"):
        page = registry.ui_page(task)
    if page is None:
        with widgets.page_errors(f"Generic page of `{task}`"):
            generic.render(task)
        return
    with widgets.page_errors(f"The page of task `{task}` (plugin {page.plugin or '?'})"):
        draw = resolve(page.render)
        draw()


def _page_callable(entry: PageEntry) -> Callable[[], None]:
    if entry.kind == "home":
        return home.render

    def draw() -> None:
        render_task_page(entry.task or entry.url_path)

    draw.__name__ = f"page_{entry.url_path.replace('-', '_')}"
    return draw


def _st_page(entry: PageEntry) -> st.Page:
    kwargs = {"title": entry.title, "url_path": entry.url_path}
    if entry.kind == "home":
        kwargs = {"title": entry.title, "default": True}
    try:
        return st.Page(_page_callable(entry), icon=entry.icon or None, **kwargs)
    except Exception:  # an icon Streamlit does not accept must not hide the page
        return st.Page(_page_callable(entry), **kwargs)


def main() -> None:
    """The app: page config, sidebar summary, navigation, and the current page."""
    st.set_page_config(page_title="deepapps", page_icon=":material/hub:", layout="wide")
    entries, error = page_entries()
    sections: dict[str, list[st.Page]] = {HOME_SECTION: []}
    for entry in sorted(
        entries, key=lambda e: (e.section != HOME_SECTION, e.section, e.kind != "home", e.title.lower())
    ):
        sections.setdefault(entry.section, []).append(_st_page(entry))
    st.session_state["deepapps_pages"] = {e.url_path: asdict(e) for e in entries}
    current = st.navigation(sections, position="sidebar", expanded=True)
    with st.sidebar:
        _sidebar_status(error)
        with st.expander("Runtime", expanded=False):
            from deepapps_ui.widgets import runtime_settings

            runtime_settings()
    current.run()


def _sidebar_status(error: str | None) -> None:
    from deepapps.plugins import get_plugins

    try:
        plugins = get_plugins()
    except Exception as exc:  # never let the sidebar take the app down
        st.error(f"Plugins could not be listed: {exc}")
        return
    failed = [p.name for p in plugins if p.status != "ok"]
    st.caption(f"{len(plugins)} plugins · {len(failed)} failed")
    if failed:
        st.warning("Failed plugins: " + ", ".join(failed) + " (see Home)")
    if error:
        st.error(f"The registry could not be built, so only Home is shown: {error}")
