"""CLI: --json shapes, errors as one line, pass-through options, and the light listing path."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from click.testing import CliRunner

from deepapps.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_listings_print_json_lists(boring_plugin):
    for verb in ("plugins", "tasks", "models", "datasets"):
        out = invoke(verb, "--json")
        assert out.exit_code == 0, out.output
        rows = json.loads(out.output)
        assert isinstance(rows, list)
    tasks = {t["name"]: t for t in json.loads(invoke("tasks", "--json").output)}
    assert tasks["word-count"]["verbs"] == ["run", "train", "eval", "bench"]
    assert [o["flag"] for o in tasks["word-count"]["options"]["run"]] == ["--min-len", "--lowercase"]
    models = {m["name"]: m for m in json.loads(invoke("models", "--json").output)}
    assert models["whitespace"]["available"] is True
    assert models["whitespace"]["card"]["license"] == "MIT"
    plugins = {p["name"]: p for p in json.loads(invoke("plugins", "--json").output)}
    assert set(plugins["boring"]) == {"name", "version", "module", "status", "error", "hooks"}


def test_eval_json_is_exactly_one_object(boring_plugin):
    out = invoke("eval", "word-count", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert set(data) == {"task", "model", "dataset", "split", "n", "metrics", "seconds"}
    assert data["metrics"]["accuracy"] == 1.0 and data["n"] == 3 and data["split"] == "test"
    limited = json.loads(invoke("eval", "word-count", "--limit", "1", "--json").output)
    assert limited["n"] == 1


def test_bench_json_has_figures_with_units(boring_plugin):
    out = invoke("bench", "word-count", "--json", "--repeat", "5")
    data = json.loads(out.output)
    assert data["figures"]["latency"]["unit"] == "ms" and data["figures"]["latency"]["repeat"] == 5


def test_run_json_and_pass_through_options(boring_plugin):
    out = invoke("run", "word-count", "a bb ccc", "--min-len", "2", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["words"] == 2


def test_train_passes_options(boring_plugin, tmp_path):
    out = invoke("train", "word-count", "--out", str(tmp_path), "--epochs", "3", "--json")
    data = json.loads(out.output)
    assert data["epochs"] == 3 and data["out_dir"] == str(tmp_path) and data["device"] == "cpu"
    assert data["model"] is None


def test_errors_are_one_line_with_exit_2(boring_plugin):
    out = invoke("run", "no-such-task", "x")
    assert (
        out.exit_code == 2 and "unknown task 'no-such-task'" in out.output and "Traceback" not in out.output
    )
    out = invoke("run", "word-count", "x", "--device", "tpu9")
    assert out.exit_code == 2 and "invalid device 'tpu9'" in out.output
    out = invoke("eval", "word-count", "--model", "nope")
    assert out.exit_code == 2


def test_unsupported_verb_says_what_is_supported():
    from deepapps import TaskSpec, hookimpl, register_plugin, unregister_plugin

    class RunOnly:
        @hookimpl
        def register_tasks(self, register):
            register(TaskSpec(name="run-only", title="", domain="x", runner=lambda m, d, p: None))

    register_plugin(RunOnly(), "run-only")
    try:
        out = invoke("train", "run-only")
        assert out.exit_code == 2 and "does not support `deepapps train`; it supports: deepapps run" in out.output
    finally:
        unregister_plugin("run-only")


def test_plugins_json_never_imports_heavy_libraries_and_is_fast():
    code = (
        "import sys, time, io, contextlib; t=time.perf_counter();"
        "from deepapps.cli import main\n"
        "buf=io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try: main(['plugins','--json'])\n"
        "    except SystemExit: pass\n"
        "heavy=[m for m in ('torch','ultralytics','transformers','cv2','streamlit') if m in sys.modules]\n"
        "print(heavy, round(time.perf_counter()-t, 3))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    heavy, _seconds = out.stdout.strip().rsplit(" ", 1)
    assert heavy == "[]", out.stdout + out.stderr
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "deepapps.cli", "plugins", "--json"], capture_output=True, check=True
    )
    assert (
        time.perf_counter() - t0 < 10
    )  # generous on a loaded CI box; the figure lives in docs/benchmarks.md


def test_nproc_is_removed_before_relaunching_under_torchrun():
    from deepapps.cli_verbs import _without_option

    assert _without_option(["train", "t", "--nproc", "2", "--epochs", "1"], "--nproc") == [
        "train",
        "t",
        "--epochs",
        "1",
    ]
    assert _without_option(["train", "t", "--nproc=2"], "--nproc") == ["train", "t"]


def test_pull_defaults_fetches_each_missing_default(tmp_path, monkeypatch):
    from deepapps import ModelSpec, TaskSpec, hookimpl, register_plugin, unregister_plugin

    from .test_runtime import _fake_wheel

    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    wheel = _fake_wheel(tmp_path)

    class Pullable:
        @hookimpl
        def register_tasks(self, register):
            register(
                TaskSpec(
                    name="needs-weights",
                    title="",
                    domain="x",
                    runner=lambda m, d, p: None,
                    default_model="remote-weights",
                )
            )

        @hookimpl
        def register_models(self, register):
            register(
                ModelSpec(
                    name="remote-weights", task="needs-weights", source=f"pypi:{wheel}#fakeweights/model.bin"
                )
            )

    register_plugin(Pullable(), "pullable")
    try:
        models = {m["name"]: m for m in json.loads(invoke("models", "--json").stdout)}
        assert models["remote-weights"]["available"] is False
        out = invoke("pull", "--defaults", "--task", "needs-weights", "--json")
        assert out.exit_code == 0, out.output
        pulled = json.loads(out.stdout)
        assert [p["model"] for p in pulled] == ["remote-weights"]
        models = {m["name"]: m for m in json.loads(invoke("models", "--json").stdout)}
        assert models["remote-weights"]["available"] is True
        assert invoke("pull").exit_code == 2  # nothing named
    finally:
        unregister_plugin("pullable")
