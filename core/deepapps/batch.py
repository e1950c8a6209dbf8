"""Batch inference over many files: ``deepapps run TASK FOLDER|GLOB|LIST.txt --workers N``.

Inputs are folders (expanded to the task's files), quoted glob patterns (``"shots/*.jpg"``) or
text files listing one path per line (``.txt``/``.lst``; ``#`` comments, relative paths are taken
from the list's folder). Ray actors, each holding one loaded runner, take small chunks of inputs;
every finished input is appended at once to a JSONL file as one line
``{"input", "ok", "results" | "error", "run", "worker_ms", "worker_cpu_ms"}``. Nothing is kept in memory, so a
killed command loses at most the chunks in flight.

Resuming: a second run with the same JSONL skips every input that already has an ``ok`` line
with the same ``run`` fingerprint (task, model, precision, options), so it does no work when
everything is done; failed inputs are tried again and get a new line (the last line of an input
wins). A worker process that dies (killed, out of memory) is restarted by Ray and its chunk is
redone; every input that was on a dying worker is tried again alone, and one that kills its
worker by itself (after Ray's retries) is recorded as failed.
An unreadable or missing file gets its error line; the command exits non-zero at the end when
any input failed. Without ``--workers`` and ``--ray-address`` (``--jsonl`` alone) the inputs run
in this process, same file, same resume.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import DeepAppsError, InputError
from .options import Option

LIST_SUFFIXES = (".txt", ".lst")
GLOB_CHARS = set("*?[")
CRASH_RETRIES = 2  # Ray restarts a dead worker and re-runs its chunk this often, then inputs go one by one

# the core's own run options of file-input tasks (specs.BATCH_RUN_OPTIONS); any of them makes a batch run
BATCH_OPTIONS = (
    Option(
        "workers",
        "int",
        None,
        "batch run: Ray worker processes, each with its own model "
        "(not set with --ray-address: every CPU of the cluster)",
        min=1,
        max=4096,
    ),
    Option(
        "ray_address",
        "str",
        None,
        "batch run: join this Ray cluster (HOST:PORT of `ray start --head`; "
        "default $RAY_ADDRESS, else Ray starts inside the command)",
    ),
    Option(
        "jsonl",
        "path",
        None,
        "batch run: append one JSON line per input here as it finishes; "
        "a rerun skips inputs already done (default runs/batch/TASK.jsonl)",
    ),
)


@dataclass
class BatchSummary:
    """What a batch run did (``--json`` prints it)."""

    task: str
    model: str
    out: str
    inputs: int
    skipped: int = 0  # done in an earlier run
    done: int = 0
    failed: int = 0
    workers: int = 0  # 0: in this process
    ray_address: str | None = None
    seconds: float = 0.0
    inputs_per_s: float = 0.0  # over the whole command: Ray start and model loads included
    first_result_seconds: float = 0.0  # start-up: Ray, workers, model loads, first input
    steady_inputs_per_s: float = 0.0  # from the first result to the last
    worker_cpu_seconds: float = 0.0  # CPU time the workers spent on the inputs (all workers together)
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_options(spec) -> tuple[Option, ...]:
    """The batch options ``deepapps run`` parses for this task besides its own (none unless it takes files)."""
    from .specs import BATCH_INPUT_KINDS

    return BATCH_OPTIONS if spec.input_kind in BATCH_INPUT_KINDS else ()


# inputs -----------------------------------------------------------------------
def expand_batch_inputs(tokens: Iterable[str], kind: str) -> list[str]:
    """Folders, globs and list files to a de-duplicated list of paths (in the order given).

    Only folders and globs are filtered by the task's file kind; a listed or named file that is
    missing or unreadable stays in the list so its error is recorded with the results.
    """
    from .inputs import IMAGE_SUFFIXES, VIDEO_SUFFIXES, expand

    allowed = IMAGE_SUFFIXES | (VIDEO_SUFFIXES if kind == "media" else frozenset())
    out: list[str] = []
    for token in tokens:
        path = Path(token).expanduser()
        if path.is_dir():
            out += expand([token], kind) if kind in ("image", "media") else sorted(map(str, _files(path)))
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            out += _read_list(path)
        elif not path.exists() and GLOB_CHARS & set(token):
            found = sorted(p for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if kind in ("image", "media"):
                found = [p for p in found if Path(p).suffix.lower() in allowed]
            if not found:
                raise InputError(f"input {token}: the pattern matches no files for this task")
            out += found
        else:
            out.append(str(path))
    out = [os.path.abspath(p) for p in out]  # the resume key: the same file from any folder
    if not out:
        raise InputError("no inputs: give a folder, a glob pattern or a text file listing paths")
    return list(dict.fromkeys(out))


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file()]


def _read_list(path: Path) -> list[str]:
    """One path per line; blank lines and ``#`` comments skipped; relative to the list's folder."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"input list {path}: cannot read it ({exc})") from None
    items = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            p = Path(text).expanduser()
            items.append(str(p if p.is_absolute() else path.parent / p))
    return items


# results file -------------------------------------------------------------------
def run_fingerprint(task: str, model: str, precision: str, options: dict[str, Any]) -> str:
    """Short hash of what decides a result: a resumed run skips only inputs done with the same one."""
    blob = json.dumps([task, model, precision, options], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def done_inputs(path: Path, fingerprint: str) -> set[str]:
    """Inputs with an ``ok`` line of this fingerprint whose last line is ``ok`` (torn lines ignored)."""
    last: dict[str, bool] = {}
    if not path.exists():
        return set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash mid-write
            if isinstance(rec, dict) and rec.get("run") == fingerprint and "input" in rec:
                last[rec["input"]] = bool(rec.get("ok"))
    return {name for name, ok in last.items() if ok}


class JsonlWriter:
    """Appends one line per record and flushes it (a resumed run reads them back)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torn = path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
        self.fh = open(path, "a", encoding="utf-8")
        if torn:
            self.fh.write("\n")  # end a line cut by a crash so the next record starts clean

    def write(self, record: dict[str, Any]) -> None:
        self.fh.write(json.dumps(record, default=str) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


# workers ----------------------------------------------------------------------------
@dataclass
class TaskWorker:
    """Builds the per-input function of a worker: the task's runner, loaded once (picklable)."""

    task: str
    model: Any  # the core's ModelRef
    device: str
    precision: str
    options: dict[str, Any]
    threads: int | None = None  # set only in worker processes (it changes the process environment)

    def __call__(self) -> Callable[[str], dict[str, Any]]:
        import deepapps
        from deepapps.runtime import set_threads

        from .runtime.offline import apply_offline_policy

        apply_offline_policy()
        if self.threads:  # a worker process of its own: every library's thread policy reads this
            os.environ["DEEPAPPS_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(self.threads)
            set_threads(self.threads)
        runner = deepapps.load(self.task, self.model, self.device, self.precision, **self.options)
        return lambda item: run_one_input(runner, item)


def run_one_input(runner: Callable[[str], Any], item: str) -> dict[str, Any]:
    """One input's record: its results, or the error that stopped it (never raises)."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        out = runner(item)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a line in the results file
        return {
            "input": item,
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "worker_ms": round((time.perf_counter() - t0) * 1e3, 1),
            "worker_cpu_ms": round((time.process_time() - c0) * 1e3, 1),
        }
    results = out if isinstance(out, list) else [out]
    return {
        "input": item,
        "ok": True,
        "results": [r.to_dict() for r in results],
        "worker_ms": round((time.perf_counter() - t0) * 1e3, 1),
        "worker_cpu_ms": round((time.process_time() - c0) * 1e3, 1),
    }


def run_batch(
    inputs: list[str],
    out: Path,
    make_worker: Callable[[], Callable[[str], dict[str, Any]]],
    fingerprint: str,
    workers: int | None = None,
    ray_address: str | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[int, int, list[dict[str, str]], int]:
    """Process ``inputs`` not yet done in ``out``; returns (skipped, done, errors, workers used).

    ``workers`` None and no ``ray_address``: in this process. Else Ray actors (see the module
    docstring); ``workers`` None with an address uses every CPU of the cluster.
    """
    done = done_inputs(out, fingerprint)
    todo = [i for i in inputs if i not in done]
    writer = JsonlWriter(out)
    errors: list[dict[str, str]] = []

    def record(rec: dict[str, Any]) -> None:
        rec["run"] = fingerprint
        writer.write(rec)
        if not rec["ok"]:
            errors.append({"input": rec["input"], "error": rec["error"]})
        if on_record is not None:
            on_record(rec)

    try:
        if workers is None and not ray_address:
            used = 0
            if todo:
                fn = make_worker()
                for item in todo:
                    record(fn(item))
        else:
            used = _run_on_ray(todo, make_worker, workers, ray_address, record)
    finally:
        writer.close()
    return len(inputs) - len(todo), len(todo) - len(errors), errors, used


def _run_on_ray(todo, make_worker, workers, ray_address, record) -> int:
    """Chunks of ``todo`` on a pool of Ray actors; returns how many actors ran."""
    from .runtime.cluster import cluster_cpus, ray_session

    if not todo:
        return 0
    with ray_session(ray_address, num_cpus=workers) as ray:
        count = max(1, min(workers or cluster_cpus(ray), len(todo)))
        actor_cls = _actor_class(ray)
        actors = [actor_cls.remote(make_worker) for _ in range(count)]
        try:
            ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayError as exc:
            raise DeepAppsError(f"the batch workers could not start: {_first_line(exc)}") from None
        size = max(1, min(16, len(todo) // (count * 8)))
        queue = deque((todo[i : i + size], 0) for i in range(0, len(todo), size))
        _drive(ray, actors, queue, record)
        for actor in actors:
            ray.kill(actor)
        return count


def _actor_class(ray):
    """The worker actor: restarted by Ray when its process dies; a call re-runs on the new one."""

    @ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=CRASH_RETRIES)
    class BatchWorker:
        def __init__(self, make_worker) -> None:
            self.fn = make_worker()

        def ready(self) -> bool:
            return True

        def process(self, items: list[str]) -> list[dict[str, Any]]:
            return [self.fn(item) for item in items]

    return BatchWorker


def _drive(ray, actors: list, queue: deque, record) -> None:
    """Keep two chunks in flight per actor. When a worker dies, each input it held is tried again
    alone (on an actor running nothing else), so only an input that kills its worker by itself is
    recorded as failed; the others were just in the wrong process at the wrong time."""
    in_flight: dict[Any, tuple[Any, list[str], int]] = {}
    busy = {id(a): 0 for a in actors}
    solo: set[int] = set()  # actors running one suspect input and nothing else
    while queue or in_flight:
        _dispatch(actors, queue, in_flight, busy, solo)
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        actor, items, strikes = in_flight.pop(ready[0])
        busy[id(actor)] -= 1
        solo.discard(id(actor))
        try:
            records = ray.get(ready[0])
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            if strikes:  # it ran alone and still took its worker down (after Ray's own retries)
                why = f"the worker process died on this input ({type(exc).__name__})"
                record({"input": items[0], "ok": False, "error": f"WorkerCrashed: {why}"})
            else:
                queue.extendleft(([item], 1) for item in reversed(items))
            continue
        for rec in records:
            record(rec)


def _dispatch(actors: list, queue: deque, in_flight: dict, busy: dict, solo: set) -> None:
    """Give free actors work from the front of ``queue``; a suspect input runs alone."""
    for actor in actors:
        while queue and id(actor) not in solo and busy[id(actor)] < 2:
            items, strikes = queue[0]
            if strikes and busy[id(actor)]:
                break
            queue.popleft()
            in_flight[actor.process.remote(items)] = (actor, items, strikes)
            busy[id(actor)] += 1
            if strikes:
                solo.add(id(actor))


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


# the command ------------------------------------------------------------------------------
def run_cli(
    spec,
    model,
    device: str,
    precision: str,
    options: dict[str, Any],
    tokens: list[str],
    batch: dict[str, Any],
    quiet: bool,
) -> BatchSummary:
    """``deepapps run TASK INPUTS --workers N``: expand, skip what is done, run, summarise."""
    from .runtime.cluster import check_reachable, resolve_address
    from .runtime.progress import progress

    address = resolve_address(batch.get("ray_address"))
    if address:
        check_reachable(address)  # fail in seconds, before anything is read, loaded or written
    inputs = expand_batch_inputs(tokens, spec.input_kind)
    out = Path(batch.get("jsonl") or Path("runs") / "batch" / f"{spec.name}.jsonl")
    workers = batch.get("workers")
    summary = BatchSummary(
        spec.name, model.name, str(out), len(inputs), workers=workers or 0, ray_address=address
    )
    threads = 1 if (workers or address) else None
    make = TaskWorker(spec.name, model, device, precision, options, threads=threads)
    fingerprint = run_fingerprint(spec.name, model.name, precision, options)
    todo = len(set(inputs) - done_inputs(out, fingerprint))
    bar = progress(total=todo, desc=f"{spec.name} batch", unit="input", disable=quiet or not todo)
    t0 = time.perf_counter()
    stamps: list[float] = []

    def on_record(rec: dict[str, Any]) -> None:
        stamps.append(time.perf_counter() - t0)
        summary.worker_cpu_seconds += rec.get("worker_cpu_ms", 0.0) / 1e3
        bar.update(1)

    try:
        skipped, done, errors, used = run_batch(inputs, out, make, fingerprint, workers, address, on_record)
    finally:
        bar.close()
    summary.seconds = round(time.perf_counter() - t0, 3)
    summary.worker_cpu_seconds = round(summary.worker_cpu_seconds, 3)
    if stamps:
        summary.first_result_seconds = round(stamps[0], 3)
        if len(stamps) > 1 and stamps[-1] > stamps[0]:
            summary.steady_inputs_per_s = round((len(stamps) - 1) / (stamps[-1] - stamps[0]), 2)
    summary.skipped, summary.done, summary.failed, summary.errors = skipped, done, len(errors), errors
    summary.workers = used
    summary.inputs_per_s = round((done + len(errors)) / max(summary.seconds, 1e-9), 2)
    return summary
