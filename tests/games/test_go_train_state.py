"""Go training files survive crashes: the checkpoint folder swap, the metrics log, the optimiser."""

from __future__ import annotations

import inspect
import json
import os
import shutil
from dataclasses import fields

import numpy as np
import pytest
import torch

from deepapps import InputError
from deepapps.errors import CheckpointError
from deepapps.runtime import load_checkpoint, save_checkpoint
from deepapps_games.go import train_state
from deepapps_games.go.train_state import RunMetrics, find_state, read_metrics, save_state

torch.set_num_threads(1)


def _files(gen: int) -> dict:
    return {
        "a.safetensors": ({"w": torch.full((64,), float(gen))}, {"gen": gen}),
        "b.safetensors": ({"v": torch.arange(float(gen + 1))}, {"gen": gen}),
    }


def _generation(out) -> int:
    folder, manifest = find_state(out)
    a, meta_a = load_checkpoint(folder / "a.safetensors")
    b, _ = load_checkpoint(folder / "b.safetensors")
    gen = manifest["gen"]
    assert meta_a["gen"] == gen and float(a["w"][0]) == gen and len(b["v"]) == gen + 1  # one unit
    return gen


class _Crash(BaseException):
    """Stands for the process dying: nothing after it runs (BaseException: no handler catches it)."""


def _crash_at(monkeypatch, k: int) -> list[str]:
    """Make the ``k``-th disk operation of a save die (k < 0: none); returns the operations seen."""
    seen: list[str] = []

    def wrap(name, fn):
        def inner(*args, **kwargs):
            seen.append(name)
            if len(seen) - 1 == k:
                raise _Crash(name)
            return fn(*args, **kwargs)

        return inner

    for name in ("save_checkpoint", "atomic_write_text", "fsync_dir"):
        monkeypatch.setattr(train_state, name, wrap(name, getattr(train_state, name)))
    monkeypatch.setattr(os, "replace", wrap("replace", os.replace))
    monkeypatch.setattr(shutil, "rmtree", wrap("rmtree", shutil.rmtree))
    return seen


def test_a_crash_at_any_point_of_a_save_leaves_the_old_or_the_new_state(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        steps = _crash_at(m, -1)
        save_state(tmp_path / "count", _files(1), {"gen": 1})
    assert {"save_checkpoint", "atomic_write_text", "fsync_dir", "replace", "rmtree"} <= set(steps)
    outcomes = set()
    for k in range(len(steps)):
        out = tmp_path / f"crash{k}"
        save_state(out, _files(1), {"gen": 1})
        with monkeypatch.context() as m:
            _crash_at(m, k)
            with pytest.raises(_Crash):
                save_state(out, _files(2), {"gen": 2})
        outcomes.add(_generation(out))  # repairs a half-done swap
        save_state(out, _files(3), {"gen": 3})  # and the run goes on
        assert _generation(out) == 3
        assert sorted(p.name for p in out.iterdir()) == ["checkpoint"]
    assert outcomes == {1, 2}  # early crashes keep the old state, late ones the new one


def test_the_window_between_the_two_renames_is_repaired(tmp_path):
    save_state(tmp_path, _files(1), {"gen": 1})
    os.replace(tmp_path / "checkpoint", tmp_path / ".checkpoint.old")
    assert _generation(tmp_path) == 1 and (tmp_path / "checkpoint").is_dir()
    save_state(tmp_path, _files(2), {"gen": 2})
    os.replace(tmp_path / "checkpoint", tmp_path / ".checkpoint.new")
    save_state(tmp_path / "x", _files(1), {"gen": 1})
    os.replace(tmp_path / "x" / "checkpoint", tmp_path / ".checkpoint.old")
    assert _generation(tmp_path) == 2  # a complete new folder wins over the old one


def test_a_damaged_checkpoint_is_reported_not_loaded(tmp_path):
    assert find_state(tmp_path) is None
    save_state(tmp_path, _files(1), {"gen": 1})
    with open(tmp_path / "checkpoint" / "b.safetensors", "ab") as fh:
        fh.write(b"junk")
    with pytest.raises(CheckpointError, match="incomplete or damaged"):
        find_state(tmp_path)


def test_metrics_resume_cuts_a_torn_last_line_and_appends(tmp_path):
    log = RunMetrics(tmp_path)
    log.log(step=1, loss=0.5)
    log.log(step=2, loss=0.25)
    path = tmp_path / "metrics.jsonl"
    whole = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(b'{"step": 3, "lo')
    with pytest.warns(RuntimeWarning, match="torn last line"):
        resumed = RunMetrics(tmp_path, resume=True)
    assert resumed.rows == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}]
    assert path.read_bytes() == whole  # only the torn bytes went
    resumed.log(step=3, loss=0.125)
    assert path.read_bytes() == whole + b'{"step": 3, "loss": 0.125}\n'
    # a whole row that lost only its newline is kept; a bad row in the middle is an error
    path.write_bytes(whole + b'{"step": 3}')
    assert read_metrics(path)[-1] == {"step": 3} and path.read_bytes().endswith(b'{"step": 3}\n')
    path.write_bytes(b'{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(CheckpointError, match="line 2"):
        RunMetrics(tmp_path, resume=True)
    assert RunMetrics(tmp_path).rows == [] and path.read_text() == ""  # a new run starts afresh


def _replay():
    from deepapps_games.go.selfplay import Samples
    from deepapps_games.go.train import Replay

    rng = np.random.default_rng(0)
    pi = rng.random((64, 26)).astype(np.float32)
    replay = Replay(1000)
    replay.add(
        Samples(
            rng.integers(0, 2, size=(64, 10, 5, 5), dtype=np.uint8),
            pi / pi.sum(1, keepdims=True),
            rng.choice([-1.0, 1.0], size=64).astype(np.float32),
            rng.choice([-1, 1], size=(64, 25)).astype(np.int8),
        )
    )
    return replay


def test_optimizer_state_round_trips_through_safetensors(tmp_path):
    """Resuming from the saved optimiser continues exactly as the uninterrupted run would."""
    from deepapps_games.go.net import GoNet, NetConfig
    from deepapps_games.go.train import Learner, TrainConfig

    cfg = TrainConfig(size=5, blocks=1, channels=8, batch_size=8, lr=1e-2)
    torch.manual_seed(0)
    a = Learner(GoNet(NetConfig(1, 8)), cfg)
    replay = _replay()
    rng = np.random.default_rng(1)
    for _ in range(3):
        a.step(replay, rng)
    save_checkpoint(tmp_path / "opt.safetensors", *a.optimizer_tensors())
    b = Learner(GoNet(NetConfig(1, 8)), cfg)
    b.net.load_state_dict(a.net.state_dict())
    b.load_optimizer(tmp_path / "opt.safetensors")
    state = a.opt.state_dict()["state"]
    assert set(b.opt.state_dict()["state"]) == set(state) and int(state[0]["step"]) == 3
    rng_a, rng_b = np.random.default_rng(2), np.random.default_rng(2)
    a.step(replay, rng_a)
    b.step(replay, rng_b)
    for pa, pb in zip(a.net.parameters(), b.net.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_train_entry_point_declares_every_option_explicitly():
    from deepapps_games.go.train import TrainConfig, train
    from deepapps_games.go.train_options import TRAIN_OPTIONS, train_options

    params = inspect.signature(train).parameters
    assert list(params)[:5] == ["model", "dataset", "out_dir", "device", "precision"]
    kw = {n: p.default for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    table = {name: default for name, _, default, *_ in TRAIN_OPTIONS}
    assert kw == table  # same names, same order, same defaults
    config = {f.name: f.default for f in fields(TrainConfig) if f.name != "init"}
    assert config == {k: v for k, v in table.items() if k != "resume"}
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    declared = train_options()
    assert [o.name for o in declared] == list(table) and all(o.help for o in declared)
    with pytest.raises(TypeError, match="vistis"):
        train(vistis=10)
    with pytest.raises(InputError, match="no dataset"):
        train(dataset="go-games")
    for bad, msg in [
        ({"size": 4}, "option --size: 4 is below the minimum 5"),
        ({"visits": 0}, "--visits"),
        ({"lr": float("nan")}, "--lr"),
        ({"size": 7.5}, "option --size: expected a whole number"),
        ({"resume": "maybe"}, "option --resume: expected true or false"),
    ]:
        with pytest.raises(InputError, match=msg):
            train(**bad)


def test_manifest_names_the_run_state(tmp_path):
    save_state(tmp_path, _files(5), {"gen": 5, "state": {"steps": 7}})
    manifest = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert manifest["format"] == 1 and manifest["state"] == {"steps": 7}
    assert manifest["files"] == {n: (tmp_path / "checkpoint" / n).stat().st_size for n in _files(5)}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_network_update_in_mixed_precision(precision):
    """Autocast forward passes (fp16 with a gradient scaler); the weights stay float32 and move."""
    from deepapps_games.go.net import GoNet, NetConfig
    from deepapps_games.go.train import Learner, TrainConfig

    torch.manual_seed(0)
    learner = Learner(GoNet(NetConfig(1, 8)), TrainConfig(size=5, batch_size=8), "cpu", precision)
    assert (learner.scaler is not None) == (precision == "fp16")
    start = [p.detach().clone() for p in learner.net.parameters()]
    replay, rng = _replay(), np.random.default_rng(0)
    losses = [learner.step(replay, rng) for _ in range(3)]
    assert all(np.isfinite(v) for d in losses for v in d.values())
    assert all(p.dtype == torch.float32 for p in learner.net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(start, learner.net.parameters(), strict=True))
