"""Batch inference without Ray: input expansion, the JSONL results file, resuming, the CLI hook,
the reserved batch options and the fast failure of an unreachable --ray-address."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepapps import Option, PluginError, TaskSpec
from deepapps.batch import (
    JsonlWriter,
    done_inputs,
    expand_batch_inputs,
    run_batch,
    run_fingerprint,
)
from deepapps.errors import DeepAppsError, InputError
from deepapps.runtime.cluster import check_reachable, host_and_port, resolve_address


def _images(folder: Path, n: int, bad: int = 0) -> list[Path]:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    for i in range(bad):
        p = folder / f"broken{i}.png"
        p.write_bytes(b"not an image")
        paths.append(p)
    return paths


def test_inputs_from_folder_glob_and_list(tmp_path):
    _images(tmp_path / "a", 3)
    (tmp_path / "a" / "notes.md").write_text("x")
    listing = tmp_path / "list.txt"
    listing.write_text("# scenes\na/img0.png\n\n/nowhere/missing.png\n")
    got = expand_batch_inputs([str(tmp_path / "a"), str(tmp_path / "a" / "img*.png"), str(listing)], "image")
    a = [str(tmp_path / "a" / f"img{i}.png") for i in range(3)]
    # folder and glob keep images only, duplicates go, a missing listed file stays (its error is recorded)
    assert got == a + ["/nowhere/missing.png"]
    with pytest.raises(InputError, match="matches no files"):
        expand_batch_inputs([str(tmp_path / "*.jpg")], "image")


def test_results_file_resume_keys_on_fingerprint_and_last_line(tmp_path):
    out = tmp_path / "r.jsonl"
    fp = run_fingerprint("t", "m", "fp32", {"conf": 0.25})
    assert fp != run_fingerprint("t", "m", "fp32", {"conf": 0.5})
    w = JsonlWriter(out)
    for rec in (
        {"input": "a", "ok": True, "run": fp},
        {"input": "b", "ok": False, "run": fp},
        {"input": "c", "ok": True, "run": "other"},
        {"input": "d", "ok": False, "run": fp},
        {"input": "d", "ok": True, "run": fp},
    ):
        w.write(rec)
    w.close()
    with open(out, "a") as fh:
        fh.write('{"input": "e", "ok": tr')  # cut by a crash
    assert done_inputs(out, fp) == {"a", "d"}
    JsonlWriter(out).close()  # reopening ends the torn line
    assert out.read_text().endswith("tr\n")


def _counting_worker():
    calls = []

    def make():
        def fn(item):
            calls.append(item)
            if "broken" in item:
                return {"input": item, "ok": False, "error": "InputError: cannot be decoded"}
            return {"input": item, "ok": True, "results": [{"n": len(item)}]}

        return fn

    return make, calls


def test_in_process_batch_streams_and_resumes(tmp_path):
    items = [f"/x/img{i}.png" for i in range(5)] + ["/x/broken.png"]
    out = tmp_path / "r.jsonl"
    make, calls = _counting_worker()
    skipped, done, errors, used = run_batch(items, out, make, "fp")
    assert (skipped, done, used) == (0, 5, 0) and errors == [
        {"input": "/x/broken.png", "error": "InputError: cannot be decoded"}
    ]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [rec["input"] for rec in lines] == items and all(rec["run"] == "fp" for rec in lines)
    calls.clear()
    skipped, done, errors, _ = run_batch(items, out, make, "fp")
    assert (
        calls == ["/x/broken.png"] and skipped == 5 and done == 0 and len(errors) == 1
    )  # only the failure is retried


@pytest.fixture
def palette_folder(tmp_path):
    _images(tmp_path / "imgs", 3, bad=1)
    return tmp_path / "imgs"


def test_cli_batch_run_lists_unreadable_files_and_exits_nonzero_then_resumes(tmp_path, palette_folder):
    from deepapps.cli import cli as main

    out = tmp_path / "out.jsonl"
    args = ["run", "color-palette", str(palette_folder), "--jsonl", str(out), "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output
    summary = json.loads(res.stdout)
    assert (summary["inputs"], summary["done"], summary["failed"], summary["skipped"]) == (4, 3, 1, 0)
    recs = {Path(r["input"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert recs["broken0.png"]["ok"] is False and "cannot be decoded" in recs["broken0.png"]["error"]
    assert (
        recs["img0.png"]["results"][0]["task"] == "color-palette"
        and len(recs["img0.png"]["results"][0]["colors"]) > 0
    )
    again = json.loads(CliRunner().invoke(main, args).stdout)
    assert (again["skipped"], again["done"], again["failed"]) == (3, 0, 1)


def test_batch_options_are_reserved_for_file_tasks_only():
    workers = Option("workers", "int", 1, "w", min=1)
    with pytest.raises(PluginError, match="clash with the core"):
        TaskSpec(name="img-task", title="t", domain="d", runner="x:y", input_kind="image", options=(workers,))
    TaskSpec(name="text-task", title="t", domain="d", runner="x:y", input_kind="text", options=(workers,))


def test_cli_help_lists_batch_options():
    from deepapps.cli import cli as main

    res = CliRunner().invoke(main, ["run", "color-palette", "--help"])
    assert res.exit_code == 0 and "--ray-address" in res.output and "--jsonl" in res.output


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_ray_address_fails_fast_with_advice(tmp_path, palette_folder, monkeypatch):
    from deepapps.cli import cli as main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None) is None and host_and_port("ray://h:10001") == ("h", 10001)
    address = f"127.0.0.1:{_closed_port()}"
    t0 = time.perf_counter()
    with pytest.raises(DeepAppsError, match="cannot reach the Ray cluster at .*ray start --head"):
        check_reachable(address)
    out = tmp_path / "o.jsonl"
    res = CliRunner().invoke(
        main, ["run", "color-palette", str(palette_folder), "--ray-address", address, "--jsonl", str(out)]
    )
    assert time.perf_counter() - t0 < 10
    assert res.exit_code != 0 and "cannot reach the Ray cluster" in res.output
    assert not out.exists()  # nothing started, nothing written
    monkeypatch.setenv("RAY_ADDRESS", address)
    assert resolve_address(None) == address
    with pytest.raises(InputError, match="HOST:PORT"):
        host_and_port("somehost:port")
