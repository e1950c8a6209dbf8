"""The third-party example plugin (examples/deepapps-example) works like any installed plugin:
discovered through its entry point, listed by the CLI, runnable from Python and the CLI, and
visible in the UI.

CI installs it with ``pip install -e examples/deepapps-example --no-deps``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import deepapps
from deepapps import InputError
from deepapps.plugins import reset

pytest.importorskip(
    "deepapps_example",
    reason="the example plugin is not installed: pip install -e examples/deepapps-example --no-deps",
)

# three flat bands with known colours and shares (50 %, 30 %, 20 %)
BANDS = [((200, 40, 40), 50), ((30, 160, 60), 30), ((20, 40, 220), 20)]


def band_image() -> np.ndarray:
    img = np.zeros((40, 100, 3), dtype=np.uint8)
    x = 0
    for color, width in BANDS:
        img[:, x : x + width] = color
        x += width
    return img


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepapps.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.fixture
def only_example(monkeypatch):
    """Load only the example plugin, so these tests do not depend on the domain plugins."""
    monkeypatch.setenv("DEEPAPPS_LOAD_PLUGINS", "example")
    reset()
    yield
    reset()


def test_discovered_through_its_entry_point():
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="deepapps")}
    assert eps["example"].value == "deepapps_example.plugin"
    assert eps["example"].dist.name == "deepapps-example"
    assert importlib.metadata.version("deepapps-example") == "0.1.0"


def test_listed_by_the_cli_as_json():
    plugins = json.loads(cli("plugins", "--json").stdout)
    example = next(p for p in plugins if p["name"] == "example")
    assert example == {
        "name": "example",
        "version": "0.1.0",
        "module": "deepapps_example.plugin",
        "status": "ok",
        "error": None,
        "hooks": ["register_datasets", "register_models", "register_tasks", "register_ui_pages"],
    }
    tasks = json.loads(cli("tasks", "--json", DEEPAPPS_LOAD_PLUGINS="example").stdout)
    assert [t["name"] for t in tasks] == ["color-palette"]
    assert tasks[0]["plugin"] == "example"
    assert tasks[0]["default_model"] == "kmeans-palette"
    assert tasks[0]["verbs"] == ["run", "eval", "bench"]
    models = json.loads(cli("models", "--json", DEEPAPPS_LOAD_PLUGINS="example").stdout)
    assert [(m["name"], m["available"], m["card"]["params"]) for m in models] == [("kmeans-palette", True, 0)]
    assert models[0]["card"]["metrics_command"] == "deepapps eval color-palette --json"


def test_listing_imports_nothing_heavy():
    code = (
        "import sys, deepapps; deepapps.list_tasks(); deepapps.list_models();"
        "print(sorted(m for m in ('torch', 'streamlit', 'deepapps_example.palette') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DEEPAPPS_LOAD_PLUGINS": "example"},
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_runnable_through_deepapps_load(only_example):
    runner = deepapps.load("color-palette", k=3)
    result = runner(band_image())
    assert result.task == "color-palette" and result.model == "kmeans-palette"
    assert result.rgb == [list(c) for c, _ in BANDS]
    assert result.colors == ["#c82828", "#1ea03c", "#1428dc"]
    assert result.fractions == [0.5, 0.3, 0.2]
    assert result.rms_error == 0.0 and result.image_size == [100, 40]
    assert set(result.timings) == {"load", "preprocess", "forward", "postprocess", "total"}
    assert result.source == "<array 40x100x3>"
    data = json.loads(result.to_json())
    assert "image" not in data and data["k"] == 3
    picture = result.plot()
    assert picture.mode == "RGB" and picture.width >= 320
    # the palette strip's first pixel column carries the most common colour
    assert picture.getpixel((2, picture.height - 40)) == (200, 40, 40)
    # per-call options override load options; the alias resolves to the task
    assert deepapps.load("palette")(band_image(), k=2).k == 2


def test_bad_options_are_input_errors(only_example, tmp_path):
    with pytest.raises(InputError, match="option --k: 0 is below the minimum 1"):
        deepapps.load("color-palette", k=0)
    with pytest.raises(InputError, match=r"unknown option --kk .*did you mean --k\?"):
        deepapps.load("color-palette")(band_image(), kk=3)
    with pytest.raises(InputError, match="file not found"):
        deepapps.load("color-palette")("/no/such/picture.png")
    with pytest.raises(deepapps.ModelNotAvailableError, match="'some/weights.pt' does not exist"):
        deepapps.load("color-palette", model="some/weights.pt")
    (tmp_path / "weights.pt").write_bytes(b"x")
    with pytest.raises(InputError, match="no weight files"):
        deepapps.load("color-palette", model=str(tmp_path / "weights.pt"))


def test_cli_run_and_eval(tmp_path):
    from PIL import Image

    picture = tmp_path / "bands.png"
    Image.fromarray(band_image()).save(picture)
    only = {"DEEPAPPS_LOAD_PLUGINS": "example"}
    out = cli(
        "run", "color-palette", str(picture), "--k", "3", "--json", "--save", str(tmp_path / "out"), **only
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert results[0]["colors"] == ["#c82828", "#1ea03c", "#1428dc"]
    assert (tmp_path / "out" / "bands.png").stat().st_size > 0
    report = json.loads(cli("eval", "color-palette", "--limit", "10", "--json", **only).stdout)
    assert set(report) == {"task", "model", "dataset", "split", "n", "metrics", "seconds"}
    assert report["n"] == 10 and report["dataset"] == "synthetic-palettes" and report["split"] == "test"
    assert report["metrics"]["colors_found_within_20"] >= 0.9
    assert report["metrics"]["mean_color_error_rgb"] < 10


def test_dataset_splits_are_disjoint(only_example):
    test = deepapps.load_dataset("synthetic-palettes", "test", n=5)
    train = deepapps.load_dataset("synthetic-palettes", "train", n=5)
    assert len(test) == 5 and test[0]["image"].shape == (96, 96, 3)
    assert not any(np.array_equal(a["image"], b["image"]) for a in test for b in train)
    assert all(abs(item["fractions"].sum() - 1) < 1e-9 for item in test)


def test_visible_in_the_ui(only_example):
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash

    from deepapps_ui import APP_PATH

    at = AppTest.from_file(str(APP_PATH), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    text = "\n".join(m.value for m in at.markdown)
    assert "| example | 0.1.0 | ok |" in text
    assert "| color-palette | Colour palette | example | example | kmeans-palette |" in text
    pages = at.session_state["deepapps_pages"]
    assert pages["color-palette"]["kind"] == "plugin" and pages["color-palette"]["plugin"] == "example"
    # open the plugin's own page: it runs on its built-in sample picture
    at._page_hash = calc_hash("color-palette")  # AppTest.switch_page only knows file pages
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "🎨 Colour palette"
    assert len(at.image) == 1
    assert '"k": 5' in at.json[0].value
