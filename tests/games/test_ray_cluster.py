"""The multi-machine recipe of docs/scale-out.md, on one machine: `ray start --head` on 127.0.0.1
with 2 CPUs (token authentication, its own temp folder), then a short Go self-play training run
and a batch-inference run join it through --ray-address; the head is stopped at the end."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray head node in its own process group (stopped by its id, never `ray stop`, which would
    stop every Ray on the machine)."""
    tmp = tmp_path_factory.mktemp("ray-head")
    port = _free_port()
    env = dict(
        os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16)
    )
    env.pop("RAY_ADDRESS", None)
    argv = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        "--port",
        str(port),
        "--num-cpus",
        "2",
        "--node-ip-address",
        "127.0.0.1",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
        "--temp-dir",
        str(tmp / "ray"),
    ]
    log = open(tmp / "head.log", "w")
    head = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if head.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        f"ray head did not start: {(tmp / 'head.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.3)
        yield f"127.0.0.1:{port}", env
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        log.close()


def _deepapps(args, env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "deepapps"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_selfplay_training_joins_the_cluster(cluster, tmp_path):
    address, env = cluster
    args = [
        "train",
        "go",
        "--out",
        str(tmp_path / "run"),
        "--ray-address",
        address,
        "--json",
        "--size",
        "5",
        "--blocks",
        "1",
        "--channels",
        "8",
        "--workers",
        "2",
        "--max-games",
        "4",
        "--visits",
        "8",
        "--fast-visits",
        "4",
        "--concurrent",
        "2",
        "--games-per-chunk",
        "2",
        "--min-buffer",
        "8",
        "--batch-size",
        "8",
        "--reuse",
        "1",
        "--gate-every",
        "1000",
        "--gate-games",
        "2",
        "--gate-visits",
        "2",
        "--eval-games",
        "2",
        "--eval-visits",
        "2",
    ]
    res = _deepapps(args, env, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)
    assert summary["games"] >= 4 and summary["positions"] > 0 and summary["steps"] > 0
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_batch_inference_joins_the_cluster(cluster, tmp_path):
    import numpy as np
    from PIL import Image

    address, env = cluster
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / "list.txt").write_text("\n".join(f"im{i}.png" for i in range(6)) + "\nmissing.png\n")
    args = ["run", "color-palette", "list.txt", "--ray-address", address, "--jsonl", "out.jsonl", "--json"]
    res = _deepapps(args, env, tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]  # the missing file fails, at the end
    summary = json.loads(res.stdout)
    assert (summary["done"], summary["failed"], summary["workers"]) == (6, 1, 2)
    assert summary["errors"][0]["input"].endswith("missing.png")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 7 and sum(json.loads(line)["ok"] for line in lines) == 6
    again = json.loads(_deepapps(args, env, tmp_path).stdout)
    assert (again["skipped"], again["done"]) == (6, 0)
