"""Batch inference on a local Ray (2 CPUs, started once for the module): same records as one
process, a worker killed mid-job (its chunk is redone), an input that always kills its worker."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from deepapps.batch import TaskWorker, run_batch, run_fingerprint


@pytest.fixture(scope="module")
def ray_local():
    from ray import cloudpickle

    from deepapps.runtime.cluster import ray_session

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import the tests
    with ray_session(num_cpus=2) as ray:
        yield ray


class CrashingWorker:
    """Kills its own process on ``crash-once`` the first time (a marker file says it happened) and
    on ``poison`` every time; other inputs give their name's length."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self):
        def fn(item: str) -> dict:
            name = Path(item).name
            if name == "poison" or (name == "crash-once" and not os.path.exists(self.marker)):
                Path(self.marker).touch()
                os._exit(3)
            return {"input": item, "ok": True, "results": [{"len": len(name)}]}

        return fn


def _records(path: Path) -> dict[str, dict]:
    return {rec["input"]: rec for rec in map(json.loads, path.read_text().splitlines())}


def test_killed_worker_chunk_is_redone_and_poison_input_fails_alone(ray_local, tmp_path):
    items = [f"/in/item{i}" for i in range(6)] + ["/in/crash-once", "/in/poison"]
    out = tmp_path / "r.jsonl"
    skipped, done, errors, used = run_batch(items, out, CrashingWorker(str(tmp_path / "m")), "fp", workers=2)
    assert used == 2 and skipped == 0 and done == 7
    assert [e["input"] for e in errors] == ["/in/poison"] and "WorkerCrashed" in errors[0]["error"]
    recs = _records(out)
    assert set(recs) == set(items)
    assert recs["/in/crash-once"]["ok"] and recs["/in/crash-once"]["results"] == [{"len": 10}]
    assert all(recs[f"/in/item{i}"]["results"] == [{"len": 5}] for i in range(6))
    # a second run does no work for the done inputs: only the failed one is tried again
    skipped, done, errors, _ = run_batch(items, out, CrashingWorker(str(tmp_path / "m")), "fp", workers=2)
    assert (skipped, done, len(errors)) == (7, 0, 1)


def test_ray_records_equal_in_process_records(ray_local, tmp_path):
    """A real image task (the example plugin's colour palette): 2 Ray workers and one process agree."""
    import numpy as np
    from PIL import Image

    from deepapps.resolution import resolve_model

    rng = np.random.default_rng(1)
    items = []
    for i in range(4):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(p)
        items.append(str(p))
    ref = resolve_model("color-palette", None)
    make = TaskWorker("color-palette", ref, "cpu", "fp32", {}, threads=1)
    fp = run_fingerprint("color-palette", ref.name, "fp32", {})
    run_batch(items, tmp_path / "ray.jsonl", make, fp, workers=2)
    run_batch(items, tmp_path / "local.jsonl", make, fp)
    on_ray, local = _records(tmp_path / "ray.jsonl"), _records(tmp_path / "local.jsonl")
    assert set(on_ray) == set(items)
    for item in items:
        assert (
            on_ray[item]["ok"] and on_ray[item]["results"][0]["colors"] == local[item]["results"][0]["colors"]
        )


def test_input_sharing_a_worker_with_a_poison_input_is_not_blamed(ray_local, tmp_path):
    """One worker holds two inputs at once: when the poison one kills it, the other is redone alone."""
    items = ["/in/a", "/in/poison", "/in/b"]
    out = tmp_path / "r.jsonl"
    _, done, errors, used = run_batch(items, out, CrashingWorker(str(tmp_path / "m")), "fp", workers=1)
    assert used == 1 and done == 2 and [e["input"] for e in errors] == ["/in/poison"]
    recs = _records(out)
    assert recs["/in/a"]["ok"] and recs["/in/b"]["ok"] and not recs["/in/poison"]["ok"]
