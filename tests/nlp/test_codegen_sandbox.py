"""The code-generation sandbox contains what untrusted programs do, and the host is unharmed.

Each attack runs for real (short limits keep it fast): an infinite loop, a fork bomb (capped by the
process limit of the unprivileged uid), a memory hog, writes outside the work dir, reading secrets
from the environment, sockets, output floods. CI runs as root, where the full isolation applies;
the fallback (no namespaces) is exercised with ``isolate=False``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepapps_nlp.codegen.sandbox import Limits, Sandbox, SandboxError

ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def box():
    return Sandbox(Limits(timeout=3, memory_mb=256, nproc=16, output_kb=64))


def _uid_processes(uid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    pids.append(int(name))
            except OSError:
                pass
    return pids


def test_a_program_runs_with_stdin_and_reports_times(box):
    v = box.run("import sys\nprint(sum(map(int, sys.stdin.read().split())))\n", "3 4 5\n")
    assert v.status == "ok" and v.exit_code == 0 and v.stdout == "12\n"
    assert v.wall_s > 0 and v.cpu_s is not None and v.cpu_s >= 0
    if ROOT:
        iso = v.isolation
        assert iso["namespaces"] and iso["pid_namespace"] and iso["readonly_root"] and iso["user_switched"]
        assert iso["uid"] != 0 and iso["network"].startswith("none")


def test_exceptions_and_exit_codes_are_errors(box):
    v = box.run("raise ValueError('boom')")
    assert v.status == "error" and v.exit_code == 1 and "ValueError: boom" in v.stderr
    assert box.run("import sys; sys.exit(3)").exit_code == 3


def test_infinite_loop_is_stopped_by_the_wall_limit(box):
    t0 = time.monotonic()
    v = box.run("while True:\n    pass\n", limits=Limits(timeout=1))
    assert v.status == "timeout" and "limit" in v.reason
    assert time.monotonic() - t0 < 1 + 4  # the limit plus start-up, never the program's will


def test_sleeping_forever_is_a_timeout_too(box):
    v = box.run("import time\ntime.sleep(60)\n", limits=Limits(timeout=1))
    assert v.status == "timeout"


def test_cpu_time_limit(box):
    v = box.run("while True:\n    pass\n", limits=Limits(timeout=20, cpu=1))
    assert v.status == "timeout"
    assert "CPU" in v.reason or "wall" in v.reason  # CPU when the machine gives us a core, else wall
    if "CPU" in v.reason:
        assert v.cpu_s >= 0.9


@pytest.mark.skipif(not ROOT, reason="RLIMIT_NPROC binds only an unprivileged uid: needs root to switch")
def test_fork_bomb_is_capped_and_leaves_no_process(box):
    code = (
        "import os, time\n"
        "made = 0\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        made += 1\n"
        "    except OSError:\n"
        "        break\n"
        "print(made, flush=True)\n"
    )
    v = box.run(code)
    assert v.status == "ok"
    made = int(v.stdout.split()[0])
    assert 0 < made < 16  # the process limit, not the loop, stopped it
    assert _uid_processes(v.isolation["uid"]) == []  # the sleeping children died with the namespace


def test_memory_hog_hits_the_memory_limit(box):
    v = box.run("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n")
    assert v.status == "memory" and "MemoryError" in v.stderr


@pytest.mark.skipif(not ROOT, reason="cgroups are created by root")
def test_memory_hogs_in_many_processes_are_capped_as_a_whole(box):
    """RLIMIT_AS binds each process; the run's memory cgroup binds them together (256 + 64 MB here)."""
    code = (
        "import os, time\n"
        "kids = []\n"
        "for _ in range(5):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        data = b'x' * (200 * 2**20)\n"
        "        time.sleep(1)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "print(sum(os.waitpid(pid, 0)[1] != 0 for pid in kids))\n"
    )
    v = box.run(code, limits=Limits(timeout=10, memory_mb=256, nproc=16))
    assert v.isolation["cgroups"] == ["memory", "pids"]
    assert v.status == "ok" and int(v.stdout) >= 3  # most children were killed, the host was not touched


def test_writes_outside_the_work_dir_fail_and_the_work_dir_is_private(box, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # even a world-writable host folder stays untouched
    target = shared / "owned.txt"
    tmp_target = Path("/tmp") / f"deepapps-sandbox-test-{os.getpid()}.txt"
    repo_target = Path(__file__).with_name(f"owned-{os.getpid()}.txt")
    code = (
        "import os\n"
        f"for path in [{str(target)!r}, {str(repo_target)!r}, '/var/tmp/x', '/etc/passwd']:\n"
        "    try:\n"
        "        open(path, 'w').write('pwned')\n"
        "        print('WROTE', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, exc.errno)\n"
        "open('local.txt', 'w').write('fine')\n"
        f"open({str(tmp_target)!r}, 'w').write('private')\n"  # /tmp in the sandbox is its own work dir
        "print('listing', sorted(os.listdir('.')))\n"
    )
    v = box.run(code)
    assert v.status == "ok", v.stderr
    assert "WROTE" not in v.stdout and v.stdout.count("refused") == 4
    assert "local.txt" in v.stdout
    assert not target.exists() and not tmp_target.exists() and not repo_target.exists()
    assert "pwned" not in Path("/etc/passwd").read_text()


def test_file_size_limit(box):
    v = box.run("open('big', 'wb').write(b'x' * (40 * 2**20))\n", limits=Limits(timeout=3, fsize_mb=4))
    assert v.status == "error" and "File too large" in v.stderr


def test_secrets_in_the_environment_are_not_visible(box, monkeypatch):
    monkeypatch.setenv("DEEPAPPS_TEST_SECRET", "hunter2-secret")
    code = (
        "import os\n"
        "print(dict(os.environ))\n"
        "for path in ['/proc/self/environ', '/proc/1/environ', f'/proc/{os.getppid()}/environ']:\n"
        "    try:\n"
        "        print(open(path, 'rb').read())\n"
        "    except OSError as exc:\n"
        "        print('refused', path)\n"
    )
    v = box.run(code)
    assert v.status == "ok"
    assert "hunter2" not in v.stdout and "DEEPAPPS_TEST_SECRET" not in v.stdout
    assert "PATH" in v.stdout  # a clean environment, not an empty one


@pytest.mark.skipif(not ROOT, reason="network namespaces need root")
def test_sockets_reach_nothing(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        "for target in [('127.0.0.1', PORT), ('1.1.1.1', 53)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=2)\n"
        "        print('CONNECTED', target)\n"
        "    except OSError as exc:\n"
        "        print('failed', target, exc.errno)\n"
        "try:\n"
        "    socket.getaddrinfo('pypi.org', 443)\n"
        "    print('RESOLVED')\n"
        "except OSError:\n"
        "    print('no dns')\n"
    ).replace("PORT", str(port))
    v = box.run(code)
    server.setblocking(False)
    with pytest.raises(BlockingIOError):  # a connection would wait in the backlog: there is none
        server.accept()
    server.close()
    assert v.status == "ok", v.stderr
    assert "CONNECTED" not in v.stdout and "RESOLVED" not in v.stdout and v.stdout.count("failed") == 2


def test_output_flood_is_cut_and_killed(box):
    v = box.run("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n")
    assert v.status == "killed" and "output limit" in v.reason
    assert v.stdout_truncated and len(v.stdout) == 64 * 1024


def test_invalid_utf8_output_is_reported_not_raised(box):
    v = box.run("import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe done')\n")
    assert v.status == "ok" and not v.stdout_utf8
    assert v.stdout.startswith("ok ") and v.raw_stdout == b"ok \xff\xfe done"


def test_concurrent_runs_keep_their_own_results(box):
    jobs = [(f"print({i} * {i})", None) for i in range(6)]
    verdicts = box.map(jobs, workers=3)
    assert [v.stdout.strip() for v in verdicts] == [str(i * i) for i in range(6)]


def test_fallback_without_namespaces_blocks_sockets_and_outside_writes(tmp_path):
    fallback = Sandbox(Limits(timeout=3), isolate=False)
    target = tmp_path / "outside.txt"
    code = (
        "import socket\n"
        "try:\n"
        "    socket.socket()\n"
        "    print('SOCKET')\n"
        "except PermissionError:\n"
        "    print('no socket')\n"
        "try:\n"
        f"    open({str(target)!r}, 'w')\n"
        "    print('WROTE')\n"
        "except PermissionError:\n"
        "    print('no write')\n"
        "open('inside.txt', 'w').write('ok')\n"
    )
    v = fallback.run(code)
    assert v.status == "ok", v.stderr
    assert v.stdout.split("\n")[:2] == ["no socket", "no write"]
    assert not target.exists()
    assert v.isolation["namespaces"] is False and "audit hook" in v.isolation["network"]


def test_bad_limits_are_refused():
    with pytest.raises(Exception, match="timeout"):
        Limits(timeout=0)
    with pytest.raises(SandboxError):
        Sandbox(python="/nonexistent/python").run("print(1)")


def test_cli_code_run_prints_a_json_verdict(tmp_path):
    from deepapps.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    program = tmp_path / "prog.py"
    program.write_text("import sys\nprint(sys.stdin.read().upper(), end='')\n")
    data = tmp_path / "in.txt"
    data.write_text("hello\n")
    out = CliRunner().invoke(
        cli, ["code", "run", str(program), "--stdin", str(data), "--timeout", "3", "--json"]
    )
    assert out.exit_code == 0, out.output
    verdict = json.loads(out.output)
    assert verdict["status"] == "ok" and verdict["stdout"] == "HELLO\n" and verdict["exit_code"] == 0
    assert {"wall_s", "cpu_s", "stdout_truncated", "isolation"} <= set(verdict)
    looping = tmp_path / "loop.py"
    looping.write_text("while True: pass\n")
    out = CliRunner().invoke(cli, ["code", "run", str(looping), "--timeout", "1", "--json"])
    assert out.exit_code == 1 and json.loads(out.output)["status"] == "timeout"
