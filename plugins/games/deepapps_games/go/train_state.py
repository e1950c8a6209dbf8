"""The files of a Go training run that must survive a crash: the checkpoint folder and the metrics log.

The run state (candidate and best weights, optimiser, replay buffer, counters) is saved as one
unit in ``OUT/checkpoint/``. A save writes every file into ``OUT/.checkpoint.new/`` (each file
fsynced, ``state.json`` last, then the folder fsynced), renames the current folder to
``.checkpoint.old``, renames the new one into place, fsyncs ``OUT`` and deletes the old one. A
folder counts only when its ``state.json`` lists every file at its recorded size, so a crash at
any point leaves the previous state or the new one: :func:`find_state` repairs the one window
where neither folder has the name ``checkpoint`` (between the two renames).

``metrics.jsonl`` is only ever appended to; on resume a last line torn by a crash is cut off
with a warning. Nothing here unpickles: tensors are safetensors, everything else JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from deepapps.errors import CheckpointError
from deepapps.runtime.checkpoint import atomic_write_text, fsync_dir, save_checkpoint
from deepapps.runtime.training import MetricsLog

STATE_DIR = "checkpoint"
NEW_DIR = ".checkpoint.new"
OLD_DIR = ".checkpoint.old"
MANIFEST = "state.json"
FORMAT = 1


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a complete checkpoint folder, or None when it is missing or incomplete."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        complete = all((folder / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest if complete else None


def save_state(
    out: Path, files: dict[str, tuple[dict[str, Any], dict[str, Any]]], manifest: dict[str, Any]
) -> Path:
    """Save ``files`` (name -> (tensors, metadata)) and ``manifest`` as the new ``OUT/checkpoint``."""
    new, current, old = out / NEW_DIR, out / STATE_DIR, out / OLD_DIR
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    sizes = {}
    for name, (tensors, meta) in files.items():
        sizes[name] = save_checkpoint(new / name, tensors, meta).stat().st_size
    atomic_write_text(
        new / MANIFEST, json.dumps({**manifest, "format": FORMAT, "files": sizes}, sort_keys=True)
    )
    fsync_dir(new)
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        os.replace(current, old)
    os.replace(new, current)
    fsync_dir(out)
    shutil.rmtree(old, ignore_errors=True)
    return current


def find_state(out: Path) -> tuple[Path, dict[str, Any]] | None:
    """The complete checkpoint folder of ``out`` and its manifest (None when there is none).

    A crash between the two renames of :func:`save_state` leaves no ``checkpoint`` folder: the
    complete new folder (else the old one) is renamed into place.
    """
    current = out / STATE_DIR
    if current.exists():
        manifest = read_manifest(current)
        if manifest is None:
            raise CheckpointError(
                f"{current} is incomplete or damaged (its {MANIFEST} does not match its files); "
                "delete it to start over, or restore it from a backup"
            )
        return current, manifest
    for name in (NEW_DIR, OLD_DIR):
        manifest = read_manifest(out / name)
        if manifest is not None:
            os.replace(out / name, current)
            fsync_dir(out)
            return current, manifest
    return None


class RunMetrics(MetricsLog):
    """:class:`MetricsLog` for a run that may be resumed: with ``resume`` the rows already in
    ``metrics.jsonl`` are read back (a torn last line is cut off with a warning) and new rows are
    appended after them; the file is never truncated and rewritten."""

    def __init__(self, out_dir: str | Path, resume: bool = False, enabled: bool = True) -> None:
        path = Path(out_dir) / "metrics.jsonl"
        if not (resume and enabled and path.exists()):
            super().__init__(out_dir, enabled=enabled)
            return
        self.out_dir = Path(out_dir)
        self.enabled = True
        self.rows = read_metrics(path)

    def log(self, **row: Any) -> None:
        self.rows.append(row)
        if self.enabled:
            with open(self.out_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                os.fsync(fh.fileno())


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl; a torn last line (a crash mid-write) is cut from the file with a warning."""
    data = path.read_bytes()
    rows: list[dict[str, Any]] = []
    start = 0
    for number, line in enumerate(data.split(b"\n"), 1):
        end = start + len(line)
        complete = end < len(data)  # followed by a newline
        if line.strip():
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                if complete:
                    raise CheckpointError(
                        f"{path} line {number} is not a JSON object ({exc}); fix or delete that line to resume"
                    ) from exc
                warnings.warn(
                    f"{path}: dropped a torn last line ({len(line)} bytes) left by an interrupted run",
                    RuntimeWarning,
                    stacklevel=3,
                )
                os.truncate(path, start)
                break
            rows.append(row)
            if not complete:  # a whole row that lost only its newline
                with open(path, "ab") as fh:
                    fh.write(b"\n")
        start = end + 1
    return rows
