"""Sandbox launcher: runs ONE untrusted program with every limit in place, then reports on fd 3.

Started by :mod:`deepapps_nlp.codegen.sandbox` as ``python -I -S _launcher.py CONFIG.json``. It
imports only the standard library (it runs before any limit is set, as the host's user) and is
executed as a script, never imported by deepapps.

As root (what CI runs as) it builds, in order:

1. new mount, PID, network, IPC and UTS namespaces (``unshare(2)``); the network namespace has
   only a loopback that is down, so every connection fails at once;
2. a child that is PID 1 of the new PID namespace: it mounts a fresh ``/proc``, remounts every
   mount read-only (bind remounts: the host's mounts are untouched), and mounts a small tmpfs on
   ``/tmp``, owned by the sandbox uid: the program's empty working directory, the only place it
   can write;
3. the program, a child of PID 1, with rlimits (CPU, address space, processes, file size, open
   files, no core dumps), no supplementary groups, an unprivileged uid/gid (``RLIMIT_NPROC`` does
   not bind root), ``no_new_privs``, a clean environment, and stdin/stdout/stderr from the host.

Before any of this it joins the run's cgroup v1 ``memory`` and ``pids`` groups when the host made
them (a memory and process limit for the run as a whole, whatever the number of processes).

PID 1 kills the whole namespace when the wall-clock limit passes, reaps everything, and writes
one JSON line on fd 3: exit code or signal, CPU time and peak memory of the program, whether the
wall limit fired, and which isolation layers were in place. When PID 1 exits the kernel kills
whatever is left in the namespace; when the launcher is killed, PID 1 dies with it
(``PR_SET_PDEATHSIG``), so nothing outlives a run.

Where namespaces are not allowed (not root, or a container without ``CAP_SYS_ADMIN``) it falls
back to rlimits + its own process group + (root only) the uid switch, and the program runs under
an audit hook that refuses sockets, subprocesses, forks, ctypes and writes outside its folder.
That fallback is a guard against accidents, not a security boundary.
"""

import ctypes
import errno
import json
import os
import resource
import signal
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
KEEP_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}

# installed in the program before it runs, in the fallback only (no namespaces to rely on)
FALLBACK_GUARD = r"""
import os, sys
_ROOT = os.getcwd()
_BLOCKED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
            "os.fork", "os.forkpty", "ctypes.", "pty.")
def _guard(event, args):
    if event.startswith(_BLOCKED) and event != "socket.gethostname":
        raise PermissionError(f"{event} is not allowed in the sandbox")
    if event == "open" and len(args) > 2 and isinstance(args[0], (str, bytes)) and (
            (isinstance(args[1], str) and any(c in args[1] for c in "wax+"))
            or (isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path != os.devnull and not path.startswith(_ROOT + os.sep):
            raise PermissionError(f"writing {path} is not allowed in the sandbox")
sys.addaudithook(_guard)
del _guard
import runpy
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = [x.encode() if isinstance(x, str) else x for x in (source, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


def _mountpoints():
    """(mount point, per-mount options) of this mount namespace, parents first."""
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            path = fields[4].encode().decode("unicode_escape")
            points.append((path, fields[5].split(",")))
    return sorted(points, key=lambda p: p[0].count("/") if p[0] != "/" else 0)


def _isolate_filesystem(cfg: dict) -> dict:
    """PID 1's view: private mounts, fresh /proc, everything read-only, a tmpfs work dir on /tmp."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    readonly, failed = 0, []
    for path, opts in _mountpoints():
        if path == "/proc" or path.startswith("/proc/"):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY  # MS_BIND: per-mount flag only, never the host's
        for opt in opts:
            flags |= KEEP_FLAGS.get(opt, 0)
        try:
            _mount(None, path, None, flags)
            readonly += 1
        except OSError:
            failed.append(path)
    size = f"size={int(cfg['work_mb'])}m,nr_inodes=4096,mode=0700,uid={cfg['uid']},gid={cfg['gid']}"
    _mount("tmpfs", cfg["workdir"], "tmpfs", MS_NOSUID | MS_NODEV, size)
    if failed and "/" in failed:
        raise OSError(errno.EPERM, "could not make / read-only")
    return {"readonly_mounts": readonly, "readonly_failed": failed}


def _set_limits(cfg: dict) -> None:
    lim = cfg["limits"]
    cpu = max(1, int(lim["cpu"] + 0.999))
    table = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, lim["memory"], lim["memory"]),
        (resource.RLIMIT_FSIZE, lim["fsize"], lim["fsize"]),
        (resource.RLIMIT_NOFILE, lim["nofile"], lim["nofile"]),
        (resource.RLIMIT_NPROC, lim["nproc"], lim["nproc"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for which, soft, hard in table:
        resource.setrlimit(which, (soft, hard))


def _exec_program(cfg: dict, err_w: int, fallback: bool) -> None:
    """In the program's process: limits, identity, then exec. Never returns."""
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        if fallback:
            os.setpgid(0, 0)
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.chdir(cfg["workdir"])
        _set_limits(cfg)
        if cfg["switch_user"]:
            os.setgroups([])
            os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
            os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        keep = {0, 1, 2, err_w}
        for fd in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
            if int(fd) not in keep:
                try:
                    os.close(int(fd))
                except OSError:
                    pass
        argv = [cfg["python"], "-I", "-S"]
        argv += ["-c", FALLBACK_GUARD, cfg["main"]] if fallback else [cfg["main"]]
        os.execve(cfg["python"], argv, cfg["env"])
    except BaseException as exc:  # report why the program could not start, then die
        try:
            os.write(err_w, f"{type(exc).__name__}: {exc}".encode()[:500])
        finally:
            os._exit(127)


def _install_program(cfg: dict, code: bytes) -> None:
    target = os.path.join(cfg["workdir"], cfg["main"])
    with open(target, "wb") as fh:
        fh.write(code)
    if cfg["switch_user"]:
        os.chown(target, cfg["uid"], cfg["gid"])


def _supervise(cfg: dict, layers: dict, status_fd: int, in_pid_ns: bool) -> int:
    """Start the program, enforce the wall limit, reap, report. Returns the exit code to use."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        _exec_program(cfg, err_w, fallback=not in_pid_ns)
    os.close(err_w)
    timed_out = []

    def on_alarm(signum, frame):
        timed_out.append(True)
        if in_pid_ns and os.getpid() == 1:
            os.kill(-1, signal.SIGKILL)  # every process of this PID namespace but us
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(cfg["wall"]))
    status, usage = None, None
    while status is None:
        try:
            wpid, wstatus, rusage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        if wpid == pid:
            status, usage = wstatus, rusage
    signal.setitimer(signal.ITIMER_REAL, 0)
    setup_error = os.read(err_r, 600).decode(errors="replace")
    report = {
        "exit": os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None,
        "cpu_s": (usage.ru_utime + usage.ru_stime) if usage else None,
        "max_rss_kb": usage.ru_maxrss if usage else None,
        "wall_s": time.monotonic() - started,
        "wall_limit_hit": bool(timed_out),
        "setup_error": setup_error or None,
        "isolation": layers,
    }
    os.write(status_fd, (json.dumps(report) + "\n").encode())
    return 0


def _as_pid1(cfg: dict, code: bytes, layers: dict, status_fd: int) -> int:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        layers.update(_isolate_filesystem(cfg))
        _install_program(cfg, code)
    except OSError as exc:
        report = {"setup_error": f"sandbox setup failed: {exc}", "isolation": layers}
        os.write(status_fd, (json.dumps(report) + "\n").encode())
        return 1
    return _supervise(cfg, layers, status_fd, in_pid_ns=True)


def _processes_of(uid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        try:
            count += name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid
        except OSError:
            pass
    return count


def _join_cgroups(cfg: dict, layers: dict) -> None:
    """Move this launcher (and so everything it starts) into the run's cgroups, set up by the host."""
    joined = []
    for ctl, path in (cfg.get("cgroups") or {}).items():
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
            joined.append(ctl)
        except OSError:
            pass
    layers["cgroups"] = sorted(joined)


def _leave_cgroups(cfg: dict) -> None:
    """Back to the parent groups, so the host can remove the run's (a group with members cannot go)."""
    for path in (cfg.get("cgroup_parents") or {}).values():
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
        except OSError:
            pass


def main() -> int:
    with open(sys.argv[1]) as fh:
        cfg = json.load(fh)
    with open(cfg["source"], "rb") as fh:  # read now: /tmp is replaced by the work dir below
        code = fh.read()
    status_fd = int(cfg["status_fd"])
    layers = {
        "namespaces": False,
        "network": "host",
        "uid": os.getuid(),
        "user_switched": False,
        "pid_namespace": False,
        "readonly_root": False,
    }
    _join_cgroups(cfg, layers)
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if cfg["isolate"] and _libc.unshare(flags) == 0:
        layers.update(
            namespaces=True,
            network="none (empty namespace)",
            pid_namespace=True,
            readonly_root=True,
            uid=cfg["uid"],
            user_switched=cfg["switch_user"],
        )
        cfg["workdir"] = "/tmp"
        child = os.fork()
        if child == 0:
            os._exit(_as_pid1(cfg, code, layers, status_fd))
        _, status = os.waitpid(child, 0)
        _leave_cgroups(cfg)
        return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    # fallback: no namespaces here
    cfg["switch_user"] = cfg["switch_user"] and os.getuid() == 0
    layers.update(
        network="host (audit hook refuses sockets)",
        user_switched=cfg["switch_user"],
        uid=cfg["uid"] if cfg["switch_user"] else os.getuid(),
    )
    if not cfg["switch_user"]:  # RLIMIT_NPROC counts every process of the user: allow for those
        cfg["limits"]["nproc"] += _processes_of(os.getuid())
    cfg["workdir"] = cfg["fallback_workdir"]
    os.makedirs(cfg["workdir"], exist_ok=True)
    if cfg["switch_user"]:
        os.chown(cfg["workdir"], cfg["uid"], cfg["gid"])
    os.chmod(cfg["workdir"], 0o700)
    _install_program(cfg, code)
    rc = _supervise(cfg, layers, status_fd, in_pid_ns=False)
    _leave_cgroups(cfg)
    return rc


if __name__ == "__main__":
    sys.exit(main())
