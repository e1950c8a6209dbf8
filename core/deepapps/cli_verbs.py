"""``deepapps run|train|eval|bench``: the same contract for every task.

Each verb resolves the task and model once, parses the task's declared options for that verb
(``--name VALUE``, ``--name=VALUE``, ``name=VALUE``, ``--flag``/``--no-flag``), checks inputs,
and only then loads anything heavy. ``deepapps VERB TASK --help`` lists the task's options.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from .errors import DeepAppsError, InputError
from .options import check_options, help_text, parse_cli

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


VERB_FUNCS = {"train": "train", "eval": "evaluate", "bench": "bench"}


def _task_and_options(ctx: click.Context, task: str | None, verb: str, show_help: bool):
    """The task spec and its options for ``verb``; prints help (with the task's options) when asked."""
    from .registry import registry

    if task is None:
        click.echo(ctx.get_help())
        ctx.exit(0 if show_help else 2)
    spec = registry.task(task)
    options = spec.verb_options()[verb]
    if show_help:
        click.echo(ctx.get_help())
        click.echo(f"\nOptions of task {spec.name!r} for {verb}:\n{help_text(options)}")
        if verb == "run" and _batch_options(spec):
            click.echo(f"\nBatch runs over many files (docs/scale-out.md):\n{help_text(_batch_options(spec))}")
        ctx.exit(0)
    if verb != "run":
        if getattr(spec, VERB_FUNCS[verb]) is None:
            raise DeepAppsError(
                f"task {spec.name!r} does not support `deepapps {verb}`; it supports: "
                + ", ".join(f"deepapps {v}" for v in spec.verbs)
            )
    return spec, options


def _no_inputs(inputs: list[str], verb: str, task: str) -> None:
    if inputs:
        raise InputError(
            f"unexpected argument {inputs[0]!r} for `deepapps {verb} {task}`; task options look like "
            f"--name VALUE (see `deepapps {verb} {task} --help`)"
        )


def _common(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON value on stdout.")(fn)
    fn = click.option("--precision", default="auto", show_default=True,
                      help="auto, fp32, bf16 or fp16 (what the task supports).")(fn)
    fn = click.option("--device", "-d", default="auto", show_default=True,
                      help="auto, cpu, cuda, cuda:N or mps.")(fn)
    fn = click.option("--help", "-h", "show_help", is_flag=True, help="Show this message and the task's options.")(fn)
    return fn


def _device_and_precision(spec, device: str, precision: str) -> tuple[str, str]:
    from .runtime.device import select_device
    from .runtime.offline import apply_offline_policy
    from .runtime.precision import select_precision

    apply_offline_policy()
    resolved = select_device(device)
    return resolved, select_precision(precision, resolved, spec.precisions)


# run -------------------------------------------------------------------------
@click.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("task", required=False)
@click.argument("tokens", nargs=-1, type=click.UNPROCESSED)
@click.option("--model", "-m", default=None, help="Registered model name or alias, local path, or hub id.")
@click.option("--save", "save_dir", default=None, type=click.Path(file_okay=False),
              help="Save each result's picture into this folder, named after its input.")
@_common
@click.pass_context
def run(ctx: click.Context, task: str | None, tokens: tuple[str, ...], model: str | None, save_dir: str | None,
        device: str, precision: str, as_json: bool, show_help: bool) -> None:
    """Run TASK on INPUTS (files, folders, text) with the task's options.

    \b
    Examples:
      deepapps run object-detection street.jpg --conf 0.4 --json
      deepapps run object-detection --track clip.mp4
      deepapps run go "C3 D4" --visits 400
      deepapps run object-detection photos/ --workers 2 --jsonl out.jsonl   (batch, Ray; resumable)
      deepapps run object-detection --help        (lists the task's options)
    """
    import deepapps

    from .inputs import check_inputs
    from .resolution import resolve_model

    spec, options = _task_and_options(ctx, task, "run", show_help)
    batch_opts = _batch_options(spec)
    inputs, values = parse_cli(list(tokens) + list(ctx.args), options + batch_opts, f"deepapps run {spec.name}")
    batch = {o.name: values.pop(o.name) for o in batch_opts if o.name in values}
    if not batch:
        inputs = check_inputs(spec, inputs)
    elif not inputs:
        raise InputError(f"no input given; usage: deepapps run {spec.name} FOLDER|GLOB|LIST.txt --workers N")
    if spec.check_run_options is not None:
        from .specs import resolve

        resolve(spec.check_run_options)(check_options(options, values, f"deepapps run {spec.name}"))
    ref = resolve_model(spec, model)
    resolved_device, resolved_precision = _device_and_precision(spec, device, precision)
    if batch:
        ctx.exit(_run_batch(spec, ref, resolved_device, resolved_precision, options, values, inputs, batch,
                            save_dir, as_json))
    runner = deepapps.load(spec.name, ref, resolved_device, resolved_precision, **values)
    if not as_json:
        click.echo(f"{runner.model_name} loaded on {resolved_device} in {runner.load_ms:.0f} ms", err=True)
    results, failures = _run_each(runner, inputs, quiet=as_json)
    if save_dir:
        _save_plots(results, Path(save_dir))
    if as_json:
        _emit([r.to_dict() for r in results])
    if failures:
        names = ", ".join(name for name, _ in failures)
        click.secho(f"Error: {len(failures)} of {len(inputs)} input(s) failed: {names}", fg="red", err=True)
        ctx.exit(1)


def _batch_options(spec) -> tuple:
    """The core's batch-run options (``--workers``, ``--ray-address``, ``--jsonl``) for file-input tasks."""
    from .batch import batch_options

    return batch_options(spec)


def _run_batch(spec, ref, device: str, precision: str, options, values: dict, inputs: list[str], batch: dict,
               save_dir: str | None, as_json: bool) -> int:
    """A batch run (see deepapps.batch): results stream to a JSONL file; exit 1 if any input failed."""
    from .batch import run_cli

    if save_dir:
        raise InputError("--save is not used by batch runs (--workers/--ray-address/--jsonl); results go to --jsonl")
    values = check_options(options, values, f"deepapps run {spec.name}")
    summary = run_cli(spec, ref, device, precision, values, inputs, batch, quiet=as_json)
    if as_json:
        _emit(summary.to_dict())
    else:
        click.echo(f"{summary.done} done, {summary.skipped} already done, {summary.failed} failed "
                   f"-> {summary.out} ({summary.seconds:.1f} s, {summary.inputs_per_s} inputs/s)")
    for err in summary.errors:
        click.secho(f"Error: input {err['input']}: {err['error']}", fg="red", err=True)
    return 1 if summary.failed else 0


def _run_each(runner, inputs: list[str], quiet: bool) -> tuple[list, list[tuple[str, str]]]:
    """Run every input on its own so one bad input is reported and the others still run."""
    results, failures = [], []
    for item in inputs:
        try:
            out = runner(item)
        except DeepAppsError as exc:
            failures.append((item, str(exc)))
            click.secho(f"Error: input {item}: {exc}", fg="red", err=True)
            continue
        for r in out if isinstance(out, list) else [out]:
            results.append(r)
            if not quiet:
                total = r.timings.get("total", 0.0)
                click.echo(f"{r.source}: {r.summary()}  ({total:.0f} ms)")
    return results, failures


def _save_plots(results: list, folder: Path) -> None:
    """One PNG per result, named after its input; an existing file is never overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(results):
        try:
            image = r.plot()
        except NotImplementedError:
            continue
        stem = Path(r.source).stem if r.source and not r.source.startswith("<") else f"{r.task}-{i}"
        target = folder / f"{stem}.png"
        n = 1
        while target.exists():
            target = folder / f"{stem}-{n}.png"
            n += 1
        image.save(target)
        click.echo(f"saved {target}", err=True)


# train -----------------------------------------------------------------------
@click.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("task", required=False)
@click.argument("tokens", nargs=-1, type=click.UNPROCESSED)
@click.option("--model", "-m", default=None, help="Model to start from: registered name, path or architecture file.")
@click.option("--dataset", default=None, help="Registered dataset or a task-specific data file.")
@click.option("--out", "out_dir", default=None, type=click.Path(), help="Output folder (default runs/train/TASK).")
@click.option("--nproc", default=1, show_default=True, type=click.IntRange(1, 512),
              help="Processes for data-parallel training (torchrun DDP) on tasks that support it.")
@_common
@click.pass_context
def train(ctx: click.Context, task: str | None, tokens: tuple[str, ...], model: str | None, dataset: str | None,
          out_dir: str | None, nproc: int, device: str, precision: str, as_json: bool, show_help: bool) -> None:
    """Train a model for TASK; shows progress, writes metrics.jsonl, a plot and a checkpoint."""
    from .resolution import resolve_model

    spec, options = _task_and_options(ctx, task, "train", show_help)
    inputs, values = parse_cli(list(tokens) + list(ctx.args), options, f"deepapps train {spec.name}")
    _no_inputs(inputs, "train", spec.name)
    values = check_options(options, values, f"deepapps train {spec.name}")
    if nproc > 1 and "RANK" not in os.environ:
        if not spec.distributed:
            raise DeepAppsError(
                f"task {spec.name!r} does not support data-parallel training; run it without --nproc"
            )
        from .runtime.distributed import torchrun

        ctx.exit(torchrun(_without_option(sys.argv[1:], "--nproc"), nproc))
    ref = resolve_model(spec, model, allow_missing_file=True) if model else None
    data = _dataset_name(spec, dataset)
    resolved_device, resolved_precision = _device_and_precision(spec, device, precision)
    out = Path(out_dir or Path("runs") / "train" / spec.name)
    fn = _verb_fn(spec, "train")
    summary = fn(model=ref, dataset=data, out_dir=out, device=resolved_device,
                 precision=resolved_precision, **values)
    if os.environ.get("RANK", "0") == "0":
        click.echo(json.dumps(summary, indent=None if as_json else 2, default=str))


def _dataset_name(spec, dataset: str | None) -> str | None:
    """A registered dataset of the task, or an existing file/folder; else a did-you-mean error."""
    from .errors import UnknownNameError
    from .registry import registry

    name = dataset or spec.default_dataset
    if name is None or Path(name).expanduser().exists():
        return name
    registered = [d.name for d in registry.datasets(spec.name)]
    if name in registered or not registered:
        return name
    raise UnknownNameError(f"dataset for task {spec.name!r}", name, registered,
                           note="not a registered dataset nor an existing file")


def _verb_fn(spec, verb: str):
    from .specs import resolve

    return resolve(getattr(spec, VERB_FUNCS[verb]))


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


# eval ------------------------------------------------------------------------
@click.command(name="eval", context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("task", required=False)
@click.argument("tokens", nargs=-1, type=click.UNPROCESSED)
@click.option("--model", "-m", default=None, help="Registered model name or alias, local path, or hub id.")
@click.option("--dataset", default=None, help="Registered dataset (default: the task's).")
@click.option("--split", default="test", show_default=True)
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Evaluate on the first N items only.")
@_common
@click.pass_context
def evaluate(ctx: click.Context, task: str | None, tokens: tuple[str, ...], model: str | None, dataset: str | None,
             split: str, limit: int | None, device: str, precision: str, as_json: bool, show_help: bool) -> None:
    """Evaluate a model for TASK on held-out data and report its metrics."""
    from .resolution import resolve_model

    spec, options = _task_and_options(ctx, task, "eval", show_help)
    inputs, values = parse_cli(list(tokens) + list(ctx.args), options, f"deepapps eval {spec.name}")
    _no_inputs(inputs, "eval", spec.name)
    values = check_options(options, values, f"deepapps eval {spec.name}")
    ref = resolve_model(spec, model)
    data = _dataset_name(spec, dataset)
    resolved_device, resolved_precision = _device_and_precision(spec, device, precision)
    t0 = time.perf_counter()
    report = _verb_fn(spec, "eval")(model=ref, dataset=data, split=split, limit=limit, device=resolved_device,
                                     precision=resolved_precision, **values)
    if not report.seconds:
        report.seconds = time.perf_counter() - t0
    data_out = report.to_dict()
    if as_json:
        click.echo(json.dumps(data_out, default=str))
        return
    click.echo(f"{data_out['task']} | model {data_out['model']} | {data_out['dataset']}:{data_out['split']} | "
               f"n={data_out['n']} | {data_out['seconds']} s")
    for k, v in data_out["metrics"].items():
        click.echo(f"  {k:<28} {v}")


# bench -----------------------------------------------------------------------
@click.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("task", required=False)
@click.argument("tokens", nargs=-1, type=click.UNPROCESSED)
@click.option("--model", "-m", default=None, help="Registered model name or alias, local path, or hub id.")
@_common
@click.pass_context
def bench(ctx: click.Context, task: str | None, tokens: tuple[str, ...], model: str | None, device: str,
          precision: str, as_json: bool, show_help: bool) -> None:
    """Measure speed figures for TASK (each with its unit and what it measured)."""
    from .resolution import resolve_model

    spec, options = _task_and_options(ctx, task, "bench", show_help)
    inputs, values = parse_cli(list(tokens) + list(ctx.args), options, f"deepapps bench {spec.name}")
    _no_inputs(inputs, "bench", spec.name)
    values = check_options(options, values, f"deepapps bench {spec.name}")
    ref = resolve_model(spec, model)
    resolved_device, resolved_precision = _device_and_precision(spec, device, precision)
    report = _verb_fn(spec, "bench")(model=ref, device=resolved_device, precision=resolved_precision, **values)
    data = report.to_dict()
    if as_json:
        click.echo(json.dumps(data, default=str))
        return
    click.echo(f"{data['task']} | model {data['model']} | {data['seconds']} s")
    for name, fig in data["figures"].items():
        notes = {k: v for k, v in fig.items() if k not in ("value", "unit")}
        click.echo(f"  {name:<36} {fig['value']:>12.4g} {fig['unit']:<10} {json.dumps(notes) if notes else ''}")


# options ---------------------------------------------------------------------
@click.command(name="options")
@click.argument("task", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: task -> verb -> options.")
@click.option("--markdown", is_flag=True, help="Print the Markdown reference (docs/options.md).")
def options_cmd(task: str | None, as_json: bool, markdown: bool) -> None:
    """The declared options of every task (or TASK), per verb."""
    from .registry import registry

    specs = [registry.task(task)] if task else registry.tasks()
    if as_json:
        _emit({s.name: {v: [o.to_dict() for o in opts] for v, opts in s.verb_options().items()} for s in specs})
    elif markdown:
        click.echo(options_markdown(specs), nl=False)
    else:
        for s in specs:
            for verb, opts in s.verb_options().items():
                if opts:
                    click.echo(f"deepapps {verb} {s.name}\n{help_text(opts)}\n")


def options_markdown(specs: list[Any]) -> str:
    """The generated option reference: one table per task and verb (checked against docs/ by a test)."""
    from .options import options_table

    parts = [
        "# Task options\n",
        "Generated from each task's declaration by `deepapps options --markdown > docs/options.md`;",
        "a test fails when this file and the declarations differ. Give options on the command line as",
        "`--name VALUE`, `--name=VALUE` or `name=VALUE` (flags: `--name` / `--no-name`), or from Python as",
        "keyword arguments to `deepapps.load(...)` (load time and call time) or to the runner (call time).\n",
    ]
    for s in specs:
        if not any(s.verb_options().values()):
            continue
        parts.append(f"## {s.name}\n")
        for verb, opts in s.verb_options().items():
            if opts:
                parts.append(f"`deepapps {verb} {s.name}`\n")
                parts.append(options_table(opts) + "\n")
    return "\n".join(parts)


COMMANDS = (run, train, evaluate, bench, options_cmd)
