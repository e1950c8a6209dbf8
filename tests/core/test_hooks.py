"""One test per hook, plus the datasette rule: every hook has a test and a docstring."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import deepapps
from deepapps import hookspecs
from deepapps.plugins import pm

HOOKS = sorted(name for name in dir(pm.hook) if name.startswith("register_"))


def test_hook_register_tasks(boring_plugin):
    spec = deepapps.registry.task("word-count")
    assert spec.plugin == "boring"
    assert deepapps.registry.task("wc") is spec  # alias
    result = deepapps.load("word-count")("the quick brown fox")
    assert result.words == 4
    assert result.model == "whitespace"


def test_hook_register_models(boring_plugin):
    model = deepapps.registry.model("whitespace")
    assert model.task == "word-count" and model.plugin == "boring"
    listed = {m.name: m.component for m in deepapps.list_models("word-count")}
    assert listed == {"whitespace": "", "stopwords-en": "stop-word list"}


def test_hook_register_datasets(boring_plugin):
    assert deepapps.load_dataset("tiny-words", "test")[0] == ("one two three", 3)
    with pytest.raises(deepapps.UnknownNameError, match="Valid split"):
        deepapps.load_dataset("tiny-words", "val")


def test_hook_register_commands(boring_plugin):
    from deepapps import cli as cli_module

    cli_module._commands_added = False
    cli_module._add_plugin_commands()
    out = CliRunner().invoke(cli_module.cli, ["boring-hello"])
    assert out.exit_code == 0 and "hello from boring" in out.output


def test_hook_register_ui_pages(boring_plugin):
    page = deepapps.registry.ui_page("word-count")
    assert page is not None and page.title == "Word count" and page.plugin == "boring"
    assert deepapps.registry.ui_page("no-such-task") is None


def test_every_hook_has_a_test():
    here = Path(__file__).read_text()
    missing = [h for h in HOOKS if f"def test_hook_{h}(" not in here]
    assert HOOKS, "no hooks found"
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    fn = getattr(hookspecs, hook)
    assert fn.__doc__ and len(fn.__doc__.strip()) > 20
    guide = (Path(__file__).parents[2] / "docs" / "plugin-authors.md").read_text()
    assert f"`{hook}(" in guide, f"{hook} missing from docs/plugin-authors.md"


def test_hookspecs_are_the_five_of_the_architecture():
    assert HOOKS == [
        "register_commands",
        "register_datasets",
        "register_models",
        "register_tasks",
        "register_ui_pages",
    ]


def test_result_json_round_trip(boring_plugin):
    import numpy as np

    r = deepapps.load("word-count")("a b")
    d = json.loads(r.to_json())
    assert (
        d["words"] == 2
        and d["task"] == "word-count"
        and set(d["timings"]) == {"load", "preprocess", "forward", "postprocess", "total"}
        and d["source"] == "a b"
    )
    assert deepapps.results.to_jsonable({"a": np.arange(3), "b": np.float32(1.5)}) == {
        "a": [0, 1, 2],
        "b": 1.5,
    }
    with pytest.raises(NotImplementedError):
        r.plot()


def test_batch_input_gives_one_result_each(boring_plugin):
    results = deepapps.load("word-count")(["a", "a b", "a b c"], min_len=1)
    assert [r.words for r in results] == [1, 2, 3]


def test_import_deepapps_is_light():
    import subprocess

    code = "import deepapps, sys; deepapps.list_tasks(); print(sorted(m for m in ('torch','ultralytics','transformers','cv2') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
