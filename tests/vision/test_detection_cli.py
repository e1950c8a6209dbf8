"""`deepapps run object-detection` as a new user types it: every case gets a result or a one-line error.

Cases from issue 12 ("What a new user hit") and issue 13 (weights files, ranges). The model loads
once per process (``deepapps.load`` shares it), so each case costs milliseconds after the first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from deepapps.cli import cli
from deepapps_vision.common.video import write_video
from deepapps_vision.scenes import render_scene


def invoke(*args: str):
    return CliRunner().invoke(cli, ["run", "object-detection", *args, "--device", "cpu"])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    scene = render_scene(10_001, 320).image
    Image.fromarray(scene).save(root / "a.jpg")
    Image.fromarray(render_scene(10_002, 320).image).save(root / "b.png")
    write_video(root / "clip.mp4", [scene] * 3, fps=3)
    return root


def one_line_error(result, *words: str) -> str:
    """The error of a refused command: exit code 2, one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("{a}", "--conf", "abc"), ("option --conf: expected a number, got 'abc'",)),
        (("{a}", "--cnf", "0.3"), ("unknown option --cnf", "did you mean --conf?")),
        (("{a}", "--imgsz", "100000"), ("--imgsz: 100000 is above the maximum 4096",)),
        (("{clip}", "--stride", "0"), ("--stride: 0 is below the minimum 1",)),
        (("{a}", "--classes"), ("option --classes needs a value",)),
        ((), ("no input given", "deepapps run object-detection INPUT")),
        (("{a}", "{root}/missing.jpg"), ("missing.jpg: file not found",)),
        (("{root}/notes.txt",), ("notes.txt", "not a supported file")),
        (("{a}", "--model", "yolo11n.pt"), ("'yolo11n.pt' does not exist",)),
    ],
    ids=[
        "conf-abc",
        "typo",
        "imgsz-range",
        "stride-0",
        "flag-without-value",
        "no-input",
        "missing-file",
        "not-media",
        "hub-name-offline",
    ],
)
def test_bad_commands_get_one_line_errors_before_loading(files, args, words):
    (files / "notes.txt").write_text("not an image")
    paths = {"a": files / "a.jpg", "clip": files / "clip.mp4", "root": files}
    line = one_line_error(invoke(*(a.format(**paths) for a in args)), *words)
    assert "loaded on" not in line


def test_track_flag_does_not_swallow_the_input(files, tmp_path):
    out = tmp_path / "tracked.mp4"
    result = invoke("--track", str(files / "clip.mp4"), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    [video] = json.loads(result.stdout)
    assert video["tracked"] is True and video["frames"] == 3 and video["output"] == str(out)
    assert video["source"].endswith("clip.mp4") and out.stat().st_size > 0


def test_every_input_runs_and_a_failed_one_sets_the_exit_code(files, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    result = invoke(str(files / "a.jpg"), str(broken), str(files / "b.png"), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [Path(r["source"]).name for r in data] == ["a.jpg", "b.png"]
    assert "1 of 3 input(s) failed" in result.stderr and "broken.jpg" in result.stderr


def test_save_names_pictures_after_inputs_and_never_overwrites(files, tmp_path):
    for _ in range(2):
        result = invoke(str(files / "a.jpg"), str(files / "b.png"), "--save", str(tmp_path))
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-1.png", "a.png", "b-1.png", "b.png"]
    assert Image.open(tmp_path / "a.png").size == (320, 320)


def test_options_in_any_order_and_name_value_form(files):
    result = invoke("conf=0.05", str(files / "a.jpg"), "--classes", "duck,mug", "--max-det=3", "--json")
    assert result.exit_code == 0, result.output
    [r] = json.loads(result.stdout)
    assert 0 < len(r["detections"]) <= 3 and {d["class_name"] for d in r["detections"]} <= {"duck", "mug"}
    assert list(r["timings"]) == ["load", "read", "preprocess", "forward", "postprocess", "total"]


def test_pickled_weights_from_the_command_line(files, tmp_path):
    marker = tmp_path / "pwned.txt"

    class CreatesFile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "weights.pt"
    torch.save({"model": CreatesFile()}, evil)
    one_line_error(invoke(str(files / "a.jpg"), "--model", str(evil)), "pickled weights", "--trust-weights")
    assert not marker.exists()


def test_help_lists_the_declared_options_with_defaults():
    result = CliRunner().invoke(cli, ["run", "object-detection", "--help"])
    assert result.exit_code == 0
    for text in (
        "--conf FLOAT IN [0, 1]",
        "[default: 0.25]",
        "--track",
        "--trust-weights",
        "(load time)",
        "--out PATH",
        "--stride INT IN [1, 10000]",
    ):
        assert text in result.output, text


def test_unknown_class_names_are_a_one_line_error_naming_the_classes(files):
    result = invoke(str(files / "a.jpg"), "--classes", "giraffe")
    assert result.exit_code == 1  # the input ran and failed; the message says why
    assert "class 'giraffe' is not one of this model's classes: 0=duck" in result.stderr
