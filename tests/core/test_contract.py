"""The core contract (issue 12): one resolution path, declared typed options, device chosen once,
runners shared, the same CLI behaviour for every task. Uses the boring word-count plugin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import deepapps
from deepapps import ModelNotAvailableError, Option, OptionError, UnknownNameError
from deepapps.cli import cli
from deepapps.options import parse_cli
from deepapps.resolution import resolve_model

from .conftest import BUILT

REPO = Path(__file__).resolve().parents[2]


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


# resolution ------------------------------------------------------------------
def test_resolution_name_alias_path_hub_and_unknown(boring_plugin, tmp_path):
    ref = resolve_model("word-count", None)
    assert ref.kind == "registered" and ref.name == "whitespace" and ref.spec.task == "word-count"
    assert resolve_model("wc", "whitespace").spec is ref.spec  # task alias
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    path_ref = resolve_model("word-count", str(weights))
    assert path_ref.kind == "path" and path_ref.path == weights.resolve()
    hub = resolve_model("word-count", "some-org/some-model")
    assert hub.kind == "hub" and hub.hub_id == "some-org/some-model"
    with pytest.raises(ModelNotAvailableError, match="run `deepapps pull some-org/some-model`"):
        _ = hub.path
    with pytest.raises(UnknownNameError, match=r"did you mean 'whitespace'\?\)\. Valid models: whitespace"):
        resolve_model("word-count", "whitespac")
    with pytest.raises(ModelNotAvailableError, match="'missing.safetensors' does not exist"):
        resolve_model("word-count", "missing.safetensors")


def test_a_model_of_another_task_is_refused_by_name(boring_plugin):
    with pytest.raises(UnknownNameError) as err:
        resolve_model("word-count", "kmeans-palette")
    text = str(err.value)
    assert "'kmeans-palette' is a model for task 'color-palette'" in text and "Valid models: whitespace" in text


def test_aliases_are_suggested_and_components_are_not_models(boring_plugin):
    with pytest.raises(UnknownNameError, match=r"did you mean 'spaces'\?\)\. Valid models: whitespace$"):
        resolve_model("word-count", "spacse")
    assert resolve_model("word-count", "spaces").name == "whitespace"
    with pytest.raises(UnknownNameError, match=r"'stopwords-en' is the 'word-count' task's stop-word list"):
        resolve_model("word-count", "stopwords-en")
    names = [m.name for m in deepapps.registry.models("word-count", components=False)]
    assert names == ["whitespace"]
    assert {m.name for m in deepapps.registry.models("word-count")} == {"whitespace", "stopwords-en"}


# options ---------------------------------------------------------------------
def test_option_types_ranges_and_suggestions():
    conf = Option("conf", "float", 0.25, "confidence", min=0, max=1)
    assert conf.parse("0.5") == 0.5 and conf.check(1) == 1.0
    with pytest.raises(OptionError, match=r"option --conf: expected a number, got 'abc'"):
        conf.parse("abc")
    with pytest.raises(OptionError, match=r"option --conf: 2.0 is above the maximum 1"):
        conf.check(2.0)
    with pytest.raises(OptionError, match="finite"):
        conf.check(float("nan"))
    classes = Option("classes", "int", None, "class ids", multiple=True, min=0)
    assert classes.parse("0, 2") == [0, 2] and classes.check(3) == [3]
    mode = Option("mode", "str", "a", "mode", choices=("fast", "accurate"))
    with pytest.raises(OptionError, match=r"did you mean fast\?"):
        mode.check("fsat")
    with pytest.raises(OptionError, match="whole number"):
        Option("n", "int").check(2.5)
    with pytest.raises(OptionError, match="true or false"):
        Option("flag", "bool").check("maybe")


def test_cli_parsing_flags_never_swallow_inputs():
    opts = (Option("track", "bool", False), Option("conf", "float", 0.25), Option("max_det", "int", 300))
    inputs, values = parse_cli(["--track", "clip.mp4", "conf=0.5", "--max-det=10", "b.jpg"], opts, "t")
    assert inputs == ["clip.mp4", "b.jpg"] and values == {"track": True, "conf": 0.5, "max_det": 10}
    assert parse_cli(["--no-track", "--", "--weird-name.jpg"], opts, "t") == (["--weird-name.jpg"], {"track": False})
    with pytest.raises(OptionError, match=r"unknown option --cnf for t \(did you mean --conf\?\)"):
        parse_cli(["--cnf", "1"], opts, "t")
    with pytest.raises(OptionError, match="needs a value"):
        parse_cli(["a.jpg", "--conf"], opts, "t")
    with pytest.raises(OptionError, match="unknown option -t for t"):
        parse_cli(["a.jpg", "-t", "0"], opts, "t")
    assert parse_cli(["-", "-5"], opts, "t")[0] == ["-", "-5"]  # stdin and negative numbers stay inputs


def test_load_checks_options_before_building_anything(boring_plugin):
    BUILT.clear()
    with pytest.raises(OptionError, match="did you mean --min-len"):
        deepapps.load("word-count", min_lne=2)
    with pytest.raises(OptionError, match="below the minimum 1"):
        deepapps.load("word-count", min_len=0)
    assert BUILT == []
    runner = deepapps.load("word-count", min_len=2, cache=False)  # a call-time option becomes a default
    assert runner("a bb ccc").words == 2 and runner("a bb ccc", min_len=3).words == 1
    with pytest.raises(OptionError, match="did you mean --min-len"):
        runner("a b", minlen=2)


def test_device_precision_and_load_options_reach_the_factory_once(boring_plugin):
    BUILT.clear()
    deepapps.clear_cache()
    first = deepapps.load("word-count", device="cpu", lowercase=True)
    second = deepapps.load("wc", model="whitespace", device="cpu", lowercase=True, min_len=3)
    assert len(BUILT) == 1  # same (task, model, device, precision, load options): one build
    built = BUILT[0]
    assert built["device"] == "cpu" and built["precision"] == "fp32" and built["lowercase"] is True
    assert built["model"].kind == "registered" and built["model"].name == "whitespace"
    assert second.model_name == first.model_name and second("a bb ccc").words == 1
    deepapps.load("word-count", device="cpu", lowercase=False)
    assert len(BUILT) == 2
    with pytest.raises(deepapps.DeepAppsError, match="precision 'bf16' is not supported"):
        deepapps.load("word-count", precision="bf16")


def test_task_may_not_declare_the_cores_options():
    with pytest.raises(deepapps.PluginError, match="clash with the core's own options"):
        deepapps.TaskSpec(name="x", title="", domain="x", runner="a.b:c", options=(Option("device"),))


# CLI behaviour ---------------------------------------------------------------
CASES = [
    # (args, exit code, text that must appear in the output)
    (["run", "word-count", "a bb", "--min-lne", "2"], 2, "did you mean --min-len?"),
    (["run", "word-count", "a bb", "--min-len", "abc"], 2, "option --min-len: expected a whole number"),
    (["run", "word-count", "a bb", "--min-len", "0"], 2, "below the minimum 1"),
    (["run", "word-count"], 2, "no input given"),
    (["run", "word-count", ""], 2, "empty input text"),
    (["run", "word-count", "a bb", "min_len=2", "--json"], 0, '"words": 1'),
    (["train", "word-count", "--nproc", "2"], 2, "does not support data-parallel training"),
    (["train", "word-count", "stray"], 2, "unexpected argument 'stray'"),
    (["eval", "word-count", "--limit", "0"], 2, "Invalid value for '--limit'"),
    (["eval", "word-count", "--dataset", "tiny-wrds"], 2, "did you mean 'tiny-words'?"),
    (["bench", "word-count", "--repeat", "2", "--json"], 0, '"repeat": 2'),
    (["run", "word-count", "--model", "whitespac", "x"], 2, "did you mean 'whitespace'?"),
]


@pytest.mark.parametrize(("args", "code", "text"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_cli_table(boring_plugin, args, code, text):
    out = invoke(*args)
    assert out.exit_code == code, out.output
    assert text in out.output
    assert "Traceback" not in out.output


def test_every_result_names_its_input_and_timings_add_up(boring_plugin):
    out = invoke("run", "word-count", "a bb", "c", "--json")
    rows = json.loads(out.output)
    assert [r["source"] for r in rows] == ["a bb", "c"]
    for r in rows:
        t = r["timings"]
        assert set(t) == {"load", "preprocess", "forward", "postprocess", "total"}
        assert t["preprocess"] + t["forward"] + t["postprocess"] <= t["total"] + 1e-6
    human = invoke("run", "word-count", "a bb", "c").output.splitlines()
    assert human[-2].startswith("a bb: 2 words  (") and human[-1].startswith("c: 1 words  (")


def test_task_help_lists_its_options(boring_plugin):
    out = invoke("run", "word-count", "--help")
    assert out.exit_code == 0 and "--min-len INT" in out.output and "[default: 1]" in out.output
    assert "--lowercase" in out.output and "(load time)" in out.output
    out = invoke("bench", "word-count", "-h")
    assert "--repeat" in out.output


def test_a_failed_input_makes_the_exit_code_non_zero_and_says_which(tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("RGB", (20, 10), (255, 0, 0)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    out = subprocess.run(
        [sys.executable, "-m", "deepapps.cli", "run", "color-palette", str(good), str(bad), "--k", "1",
         "--save", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, env=_env(DEEPAPPS_LOAD_PLUGINS="example"),
    )
    assert out.returncode == 1, out.stderr
    assert f"input {bad}" in out.stderr and "1 of 2 input(s) failed" in out.stderr
    assert out.stdout.startswith(f"{good}: 1 colours: #ff0000 100%")
    # --save names files after inputs and never overwrites: a second run adds -1
    subprocess.run(
        [sys.executable, "-m", "deepapps.cli", "run", "color-palette", str(good), "--k", "1", "--save",
         str(tmp_path / "out")], capture_output=True, timeout=120, env=_env(DEEPAPPS_LOAD_PLUGINS="example"),
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good-1.png", "good.png"]


def test_missing_input_is_reported_before_the_model_loads(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "deepapps.cli", "run", "color-palette", str(tmp_path / "nope.png")],
        capture_output=True, text=True, timeout=120, env=_env(DEEPAPPS_LOAD_PLUGINS="example"),
    )
    assert out.returncode == 2 and "nope.png: file not found" in out.stderr and "loaded" not in out.stderr


def _env(**extra):
    import os

    return {**os.environ, **extra}


# generated docs --------------------------------------------------------------
def test_generated_option_docs_match_the_declarations():
    from deepapps.docgen import first_party_markdown

    expected = first_party_markdown()
    actual = (REPO / "docs" / "options.md").read_text()
    assert actual == expected, "docs/options.md is stale: run `python -m deepapps.docgen` and commit it"


def test_listing_commands_stay_light_and_fast():
    code = (
        "import sys, time, io, contextlib\n"
        "from deepapps.cli import main\n"
        "t = time.perf_counter()\n"
        "for verb in ('tasks', 'models', 'datasets', 'plugins', 'options'):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try: main([verb, '--json'])\n"
        "        except SystemExit: pass\n"
        "heavy = [m for m in ('torch', 'ultralytics', 'transformers', 'cv2', 'streamlit') if m in sys.modules]\n"
        "print(heavy, round(time.perf_counter() - t, 3))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    heavy, seconds = out.stdout.strip().rsplit(" ", 1)
    assert heavy == "[]", out.stdout + out.stderr
    assert float(seconds) < 0.5 * 5  # five listings after start-up: each well under 0.5 s
