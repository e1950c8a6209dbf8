"""Hook implementations of the robotics plugin (registered through the `deepapps` entry point).

Registers the ``pick-and-place`` and ``warehouse`` tasks with their declared options, the cell's
fine-tuned detector (an object-detection model), the warehouse policy, the ``deepapps robot``
command group and the two Streamlit pages. Nothing heavy is imported here.
"""

from __future__ import annotations

from deepapps import hookimpl

from . import specs


@hookimpl
def register_tasks(register):
    for spec in specs.tasks():
        register(spec)


@hookimpl
def register_models(register):
    for spec in specs.models():
        register(spec)


@hookimpl
def register_commands(cli):
    from .cli import robot_group

    cli.add_command(robot_group)


@hookimpl
def register_ui_pages(register):
    for spec in specs.ui_pages():
        register(spec)
