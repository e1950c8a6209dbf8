"""Run untrusted Python programs, one process each, with hard limits: the code-generation sandbox.

``Sandbox().run(code, stdin)`` -> :class:`Verdict` (``status`` ok / timeout / memory / killed /
error, exit code, stdout and stderr capped, wall and CPU time, which isolation was in place).
``deepapps code run FILE.py --json`` is the same from a shell.

Each run starts ``_launcher.py`` (standard library only) in a fresh process. As root it puts the
program in new mount, PID, network, IPC and UTS namespaces, with every mount read-only except a
small tmpfs work dir, as an unprivileged uid from a small pool (``RLIMIT_NPROC`` does not bind
root, and one uid per concurrent run keeps one run's fork bomb from starving another), under
rlimits for CPU, address space, processes, file size and open files. The host side here enforces
the output cap and a backstop deadline, and kills the launcher's process group if either trips;
PID 1 of the namespace dies with the launcher, taking every process of the run with it.

Without root (or where namespaces are refused) runs fall back to rlimits and an audit hook in the
program that refuses sockets, subprocesses, forks and writes outside its folder: a guard against
accidents, not a security boundary. ``Verdict.isolation`` says which one a run had.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepapps import DeepAppsError

LAUNCHER = Path(__file__).with_name("_launcher.py")
STATUSES = ("ok", "timeout", "memory", "killed", "error")
UID_BASE = 64000  # DEEPAPPS_SANDBOX_UID overrides; uids that own no files on a normal host
UID_POOL = 32
STARTUP_ALLOWANCE_S = 3.0  # the host's backstop deadline = wall limit + this (PID 1 enforces the limit)
PROBE = "import json, math, hashlib, collections, itertools, re\nprint('ok')\n"
_MEMORY_MARKS = (b"MemoryError", b"Cannot allocate memory", b"out of memory", b"std::bad_alloc")


class SandboxError(DeepAppsError):
    """The sandbox itself could not run a program (not the program's fault)."""


@dataclass(frozen=True)
class Limits:
    """Per-run limits. ``cpu`` defaults to ``timeout``; ``output_kb`` caps stdout and stderr each:
    a program that writes more is killed (status ``killed``) and what it wrote first is kept."""

    timeout: float = 5.0
    cpu: float | None = None
    memory_mb: int = 512
    nproc: int = 32
    fsize_mb: int = 16
    work_mb: int = 32
    nofile: int = 64
    output_kb: int = 1024

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= 3600:
            raise DeepAppsError(f"sandbox timeout must be in (0, 3600] seconds, got {self.timeout}")
        if self.memory_mb < 32:
            raise DeepAppsError(f"sandbox memory limit must be at least 32 MB, got {self.memory_mb}")

    def for_launcher(self) -> dict[str, int | float]:
        mb = 1 << 20
        return {
            "cpu": self.cpu or self.timeout,
            "memory": self.memory_mb * mb,
            "nproc": self.nproc,
            "fsize": self.fsize_mb * mb,
            "nofile": self.nofile,
        }


@dataclass
class Verdict:
    """What happened to one program. ``status``: ``ok`` (exit 0), ``error`` (non-zero exit, e.g. an
    exception), ``timeout`` (wall or CPU limit), ``memory`` (address-space limit), ``killed``
    (output cap, or a signal). Text is decoded as UTF-8 with replacement; ``stdout_utf8`` says
    whether it was valid. ``raw_stdout`` holds the exact bytes (capped), for comparisons."""

    status: str
    exit_code: int | None
    signal: str | None
    reason: str
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    stdout_utf8: bool
    stdout_bytes: int
    wall_s: float
    cpu_s: float | None
    max_rss_mb: float | None
    total_s: float = 0.0  # the whole execution as the host saw it: sandbox set-up and tear-down included
    isolation: dict[str, Any] = field(default_factory=dict)
    raw_stdout: bytes = field(default=b"", repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self, text_limit: int | None = None) -> dict[str, Any]:
        out = asdict(self)
        out.pop("raw_stdout")
        if text_limit is not None:
            for key in ("stdout", "stderr"):
                if len(out[key]) > text_limit:
                    out[key] = out[key][:text_limit] + f"\n... ({len(out[key]) - text_limit} more characters)"
        for key in ("wall_s", "cpu_s", "total_s"):
            if out[key] is not None:
                out[key] = round(out[key], 4)
        return out


# --- uid pool: one unprivileged uid per concurrent run (locked across processes too) ----------------
class _UidPool:
    def __init__(self, base: int, size: int, folder: Path) -> None:
        self.base, self.size, self.folder = base, size, folder
        self._lock = threading.Lock()
        self._free = list(range(base, base + size))

    @contextmanager
    def take(self):
        while True:
            with self._lock:
                candidates = list(self._free)
            for uid in candidates:
                fh = self._try_lock(uid)
                if fh is not None:
                    try:
                        yield uid
                    finally:
                        with self._lock:
                            self._free.append(uid)
                        fh.close()
                    return
            time.sleep(0.01)

    def _try_lock(self, uid: int):
        with self._lock:
            if uid not in self._free:
                return None
            self._free.remove(uid)
        fh = open(self.folder / f"uid-{uid}.lock", "a")  # noqa: SIM115 (closed by take())
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except OSError:
            fh.close()
            with self._lock:
                self._free.append(uid)
            return None


_POOLS: dict[tuple[int, int], _UidPool] = {}
_PYTHONS: dict[tuple, str] = {}
_STATE_LOCK = threading.Lock()


def _base_dir() -> Path:
    """A root-only folder for staging runs (0711: the sandbox uid may traverse, never list)."""
    folder = Path(tempfile.gettempdir()) / f"deepapps-sandbox-{os.geteuid()}"
    folder.mkdir(mode=0o711, exist_ok=True)
    if folder.is_symlink() or folder.stat().st_uid != os.geteuid():
        raise SandboxError(f"{folder} is not owned by this user; remove it and retry")
    os.chmod(folder, 0o711)
    return folder


def _clean_env(workdir_hint: str = "/tmp") -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir_hint,
        "TMPDIR": workdir_hint,
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


class Sandbox:
    """Runs programs under :class:`Limits`. Thread-safe: :meth:`map` runs several at once.

    ``isolate``: namespaces + uid switch (default: when running as root; the launcher falls back by
    itself where the kernel refuses). ``python``: the interpreter for programs (default: the first
    of ``$DEEPAPPS_SANDBOX_PYTHON``, this interpreter, ``python3`` on PATH, ``/usr/local/bin/python3``,
    ``/usr/bin/python3`` that runs in the sandbox).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        isolate: bool | None = None,
        python: str | None = None,
        uid_base: int | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.isolate = (os.geteuid() == 0) if isolate is None else bool(isolate)
        self.switch_user = self.isolate and os.geteuid() == 0
        self._python = python
        base = uid_base if uid_base is not None else int(os.environ.get("DEEPAPPS_SANDBOX_UID", UID_BASE))
        self.uid_base = base
        self.folder = _base_dir()
        with _STATE_LOCK:
            self._pool = _POOLS.setdefault((base, UID_POOL), _UidPool(base, UID_POOL, self.folder))

    # interpreter ----------------------------------------------------------------------------------
    @property
    def python(self) -> str:
        """The program interpreter, checked once per process by running a probe in the sandbox."""
        if self._python:
            return self._python
        key = (self.isolate, self.switch_user, self.uid_base)
        with _STATE_LOCK:
            found = _PYTHONS.get(key)
        if found:
            return found
        tried = []
        for candidate in _python_candidates():
            try:
                verdict = self._run(PROBE.encode(), None, Limits(timeout=20), candidate)
            except SandboxError as exc:
                tried.append(f"{candidate}: {exc}")
                continue
            if verdict.ok and verdict.stdout.strip() == "ok":
                with _STATE_LOCK:
                    _PYTHONS[key] = candidate
                return candidate
            tried.append(f"{candidate}: {verdict.status} {verdict.reason or verdict.stderr[-200:]}")
        raise SandboxError(
            "no Python interpreter runs inside the sandbox (tried "
            + "; ".join(tried)
            + "); set DEEPAPPS_SANDBOX_PYTHON to one the sandbox uid can run"
        )

    # running --------------------------------------------------------------------------------------
    def run(
        self, code: str | bytes, stdin: str | bytes | None = None, limits: Limits | None = None
    ) -> Verdict:
        """Run ``code`` (Python source) with ``stdin``; never raises for anything the program does."""
        source = code.encode() if isinstance(code, str) else bytes(code)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        return self._run(source, data, limits or self.limits, self.python)

    def run_file(
        self, path: str | os.PathLike, stdin: str | bytes | None = None, limits: Limits | None = None
    ) -> Verdict:
        return self.run(Path(path).read_bytes(), stdin, limits)

    def map(
        self,
        jobs: Sequence[tuple[str | bytes, str | bytes | None]],
        workers: int = 2,
        limits: Limits | None = None,
    ) -> list[Verdict]:
        """Run ``(code, stdin)`` jobs, ``workers`` at a time; verdicts in job order."""
        if not jobs:
            return []
        _ = self.python  # probe once, before the threads start
        if workers <= 1 or len(jobs) == 1:
            return [self.run(c, s, limits) for c, s in jobs]
        with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            return list(pool.map(lambda job: self.run(job[0], job[1], limits), jobs))

    def _run(self, source: bytes, stdin: bytes | None, limits: Limits, python: str) -> Verdict:
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix="run-", dir=self.folder))
        try:
            os.chmod(staging, 0o711)
            (staging / "main.py").write_bytes(source)
            stdin_path = staging / "stdin"
            stdin_path.write_bytes(stdin or b"")
            with _Cgroups(staging.name, limits) as groups:
                if self.switch_user:
                    with self._pool.take() as uid:
                        verdict = self._launch(staging, stdin_path, limits, python, uid, groups)
                else:
                    verdict = self._launch(staging, stdin_path, limits, python, os.getuid(), groups)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        verdict.total_s = time.monotonic() - started
        return verdict

    def _launch(
        self, staging: Path, stdin_path: Path, limits: Limits, python: str, uid: int, groups: _Cgroups
    ) -> Verdict:
        status_r, status_w = os.pipe()
        config = {
            "source": str(staging / "main.py"),
            "main": "main.py",
            "python": python,
            "fallback_workdir": str(staging / "work"),
            "env": _clean_env(),
            "uid": uid,
            "gid": uid,
            "switch_user": self.switch_user,
            "isolate": self.isolate,
            "work_mb": limits.work_mb,
            "wall": limits.timeout,
            "limits": limits.for_launcher(),
            "status_fd": status_w,
            "cgroups": {ctl: str(path) for ctl, path in groups.dirs.items()},
            "cgroup_parents": {ctl: str(path) for ctl, path in groups.parents.items()},
        }
        (staging / "config.json").write_text(json.dumps(config))
        started = time.monotonic()
        try:
            with open(stdin_path, "rb") as stdin_file:
                proc = subprocess.Popen(
                    [python, "-I", "-S", str(LAUNCHER), str(staging / "config.json")],
                    stdin=stdin_file,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=(status_w,),
                    start_new_session=True,
                    env={"PATH": "/usr/bin:/bin"},
                )
        except OSError as exc:
            os.close(status_r)
            os.close(status_w)
            raise SandboxError(f"cannot start the sandbox launcher with {python}: {exc}") from exc
        os.close(status_w)
        try:
            streams, killed_for = _collect(
                proc, status_r, started + limits.timeout + STARTUP_ALLOWANCE_S, limits.output_kb * 1024
            )
        finally:
            os.close(status_r)
        wall = time.monotonic() - started
        return _verdict(streams, killed_for, wall, limits, groups.memory_limit_hit())


class _Cgroups:
    """Per-run cgroup v1 ``memory`` and ``pids`` groups under this process's own groups, where the
    controllers are mounted and writable (root): a memory limit for the run as a whole (RLIMIT_AS
    is per process: a fork bomb of memory hogs would multiply it) and a process limit that holds
    whatever the uid. The launcher joins them; they are removed after the run. Missing: skipped."""

    ROOT = Path("/sys/fs/cgroup")

    def __init__(self, name: str, limits: Limits) -> None:
        self.name, self.limits = name, limits
        self.dirs: dict[str, Path] = {}
        self.parents: dict[str, Path] = {}

    def __enter__(self) -> _Cgroups:
        if os.geteuid() != 0 or os.environ.get("DEEPAPPS_SANDBOX_CGROUPS", "1") == "0":
            return self
        values = {
            "memory": ("memory.limit_in_bytes", (self.limits.memory_mb + 64) << 20),
            "pids": ("pids.max", self.limits.nproc + 4),
        }
        for ctl, parent in _own_cgroups().items():
            run_dir = parent / "deepapps-sandbox" / self.name
            try:
                run_dir.mkdir(parents=True)
                (run_dir / values[ctl][0]).write_text(str(values[ctl][1]))
            except OSError:
                _remove_dir(run_dir)
                continue
            self.dirs[ctl], self.parents[ctl] = run_dir, parent
        return self

    def memory_limit_hit(self) -> bool:
        path = self.dirs.get("memory")
        try:
            return path is not None and int((path / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            return False

    def __exit__(self, *exc: object) -> None:
        for path in self.dirs.values():
            _remove_dir(path)


def _own_cgroups() -> dict[str, Path]:
    """This process's cgroup v1 ``memory`` and ``pids`` folders (when mounted and writable)."""
    found: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for ctl in ("memory", "pids"):
            if ctl in parts[1].split(","):
                base = _Cgroups.ROOT / ctl / parts[2].lstrip("/")
                if base.is_dir() and os.access(base, os.W_OK):
                    found[ctl] = base
    return found


def _remove_dir(path: Path) -> None:
    for attempt in range(200):  # the last processes of a run may still be exiting: retry for ~1 s
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.001 if attempt < 50 else 0.01)


def _python_candidates() -> list[str]:
    names = [
        os.environ.get("DEEPAPPS_SANDBOX_PYTHON", ""),
        sys.executable,
        shutil.which("python3") or "",
        "/usr/local/bin/python3",
        "/usr/bin/python3",
    ]
    out: list[str] = []
    for name in names:
        if name and os.path.exists(name) and name not in out:
            out.append(name)
    return out


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _collect(proc: subprocess.Popen, status_r: int, deadline: float, cap: int) -> tuple[dict, str | None]:
    """Read stdout, stderr and the launcher's report until all close; kill on the cap or deadline."""
    sel = selectors.DefaultSelector()
    names = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr", status_r: "status"}
    for fd, name in names.items():
        sel.register(fd, selectors.EVENT_READ, name)
    kept = {"stdout": bytearray(), "stderr": bytearray(), "status": bytearray()}
    seen = {"stdout": 0, "stderr": 0, "status": 0}
    killed_for = None
    while sel.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            killed_for = killed_for or "deadline"
            _kill_group(proc)
            break
        for key, _ in sel.select(timeout=min(remaining, 1.0)):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
                continue
            seen[key.data] += len(chunk)
            room = (1 << 16 if key.data == "status" else cap) - len(kept[key.data])
            kept[key.data] += chunk[: max(room, 0)]
            if key.data != "status" and seen[key.data] > cap and killed_for is None:
                killed_for = f"{key.data} over {cap // 1024} KB"
                _kill_group(proc)
    sel.close()
    proc.stdout.close()
    proc.stderr.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
    return {"kept": kept, "seen": seen}, killed_for


def _decode(data: bytes) -> tuple[str, bool]:
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


def _verdict(
    streams: dict, killed_for: str | None, wall: float, limits: Limits, memory_hit: bool = False
) -> Verdict:
    kept, seen = streams["kept"], streams["seen"]
    report = _report(bytes(kept["status"]))
    if report.get("setup_error") and report.get("exit") is None and report.get("signal") is None:
        raise SandboxError(report["setup_error"])
    if not report and killed_for is None:
        raise SandboxError("the sandbox launcher exited without a report")
    stdout, utf8 = _decode(bytes(kept["stdout"]))
    stderr, _ = _decode(bytes(kept["stderr"]))
    signum = report.get("signal")
    status, reason = _classify(report, killed_for, bytes(kept["stderr"]), limits)
    if memory_hit and status in ("killed", "error"):
        status, reason = "memory", f"memory limit of the run ({limits.memory_mb} + 64 MB, all its processes)"
    if report.get("setup_error") and report.get("exit") == 127:
        raise SandboxError(f"the program could not start: {report['setup_error']}")
    rss = report.get("max_rss_kb")
    return Verdict(
        status=status,
        exit_code=report.get("exit"),
        signal=_signal_name(signum) if signum else None,
        reason=reason,
        stdout=stdout,
        stderr=stderr,
        stdout_truncated=seen["stdout"] > len(kept["stdout"]),
        stderr_truncated=seen["stderr"] > len(kept["stderr"]),
        stdout_utf8=utf8,
        stdout_bytes=seen["stdout"],
        wall_s=report.get("wall_s", wall),
        cpu_s=report.get("cpu_s"),
        max_rss_mb=round(rss / 1024, 1) if rss else None,
        isolation=report.get("isolation", {}),
        raw_stdout=bytes(kept["stdout"]),
    )


def _report(data: bytes) -> dict[str, Any]:
    line = data.decode(errors="replace").strip().splitlines()
    if not line:
        return {}
    try:
        return json.loads(line[-1])
    except json.JSONDecodeError:
        return {}


def _classify(report: dict, killed_for: str | None, stderr: bytes, limits: Limits) -> tuple[str, str]:
    signum, code, cpu = report.get("signal"), report.get("exit"), report.get("cpu_s") or 0.0
    cpu_limit = limits.cpu or limits.timeout
    if killed_for and killed_for != "deadline":
        return "killed", f"output limit: {killed_for}"
    if report.get("wall_limit_hit") or killed_for == "deadline":
        return "timeout", f"wall-clock limit of {limits.timeout:g} s"
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and cpu >= cpu_limit):
        return "timeout", f"CPU time limit of {cpu_limit:g} s"
    tail = stderr[-4096:]
    if (code not in (0, None) or signum) and any(mark in tail for mark in _MEMORY_MARKS):
        return "memory", f"memory limit of {limits.memory_mb} MB"
    if signum == signal.SIGXFSZ:
        return "killed", f"file size limit of {limits.fsize_mb} MB"
    if signum:
        return "killed", f"killed by signal {_signal_name(signum)}"
    if code == 0:
        return "ok", ""
    return "error", f"exit code {code}"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def run_program(code: str | bytes, stdin: str | bytes | None = None, **limits: Any) -> Verdict:
    """One-shot helper: ``run_program("print(1)", timeout=2)``."""
    return Sandbox(Limits(**limits)).run(code, stdin)


__all__ = ["Limits", "Sandbox", "SandboxError", "Verdict", "run_program"]
