"""The five hooks a deepapps plugin may implement.

Each hook takes a ``register`` callback (or, for commands, the click group), the
pattern of simonw/llm: the core decides what a duplicate means and records which
plugin supplied every entry. Hook implementations must stay cheap: they register
metadata and lazy callables, never import torch or a model library.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("deepapps")
hookimpl = pluggy.HookimplMarker("deepapps")


@hookspec
def register_tasks(register):
    """Register tasks: call ``register(TaskSpec(...))`` once per task."""


@hookspec
def register_models(register):
    """Register models: call ``register(ModelSpec(...))`` once per model, with its card."""


@hookspec
def register_datasets(register):
    """Register datasets: call ``register(DatasetSpec(...))`` once per dataset."""


@hookspec
def register_commands(cli):
    """Add sub-commands to the ``deepapps`` click group ``cli`` (e.g. ``deepapps go gtp``)."""


@hookspec
def register_ui_pages(register):
    """Register Streamlit pages: call ``register(UIPageSpec(...))``; a task without one gets a generic page."""
