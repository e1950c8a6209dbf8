"""``deepapps code run FILE.py``: the code-generation sandbox on its own, with a JSON verdict.

Exit status: 0 when the program ran and exited 0 (status ``ok``), 1 otherwise (the verdict says
why), 2 for a usage error.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .specs import MEMORY_MB, TIMEOUT


@click.group(name="code")
def code_group() -> None:
    """The code-generation sandbox (`deepapps run code-generation` samples and judges programs)."""


@code_group.command(name="run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--stdin",
    "stdin_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File given to the program on standard input (default: empty).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 3600),
    default=TIMEOUT,
    show_default=True,
    help="Wall-clock and CPU limit in seconds.",
)
@click.option(
    "--memory-mb",
    type=click.IntRange(32, 65536),
    default=MEMORY_MB,
    show_default=True,
    help="Address-space limit in MB.",
)
@click.option(
    "--output-kb",
    type=click.IntRange(1, 1 << 20),
    default=1024,
    show_default=True,
    help="Kill the program once stdout or stderr passes this many KB (what came first is kept).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
def run_cmd(
    file: Path, stdin_file: Path | None, timeout: float, memory_mb: int, output_kb: int, as_json: bool
) -> None:
    """Run the Python program FILE in the sandbox: its own process, namespaces (no network, read-only
    file system but an empty temporary folder), an unprivileged uid, limits on time, memory, processes,
    file size and output."""
    from .sandbox import Limits, Sandbox

    code = file.read_bytes()
    stdin = stdin_file.read_bytes() if stdin_file else None
    verdict = Sandbox(Limits(timeout=timeout, memory_mb=memory_mb, output_kb=output_kb)).run(code, stdin)
    if as_json:
        click.echo(json.dumps(verdict.to_dict()))
    else:
        click.echo(verdict.stdout, nl=False)
        if verdict.stderr:
            click.echo(verdict.stderr, nl=False, err=True)
        cpu = f"{verdict.cpu_s:.3f} s" if verdict.cpu_s is not None else "unknown"
        click.echo(
            f"[{verdict.status}] exit {verdict.exit_code if verdict.signal is None else verdict.signal}"
            f"{' - ' + verdict.reason if verdict.reason else ''}; wall {verdict.wall_s:.3f} s, CPU {cpu}",
            err=True,
        )
    raise SystemExit(0 if verdict.ok else 1)
