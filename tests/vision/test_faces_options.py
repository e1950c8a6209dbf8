"""face-recognition on the core contract: declared options match the code, and every mistake a user
can make on the command line is a one-line error before any model loads (no dlib needed here)."""

from __future__ import annotations

import inspect
import json

import pytest
from click.testing import CliRunner

import deepapps
from deepapps.options import CALL


@pytest.fixture(scope="module")
def spec():
    return deepapps.registry.task("face-recognition")


@pytest.fixture(scope="module")
def cli():
    from deepapps.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    return cli


@pytest.fixture
def photo(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), (90, 120, 150)).save(path)
    return str(path)


def _keyword_params(fn) -> dict[str, object]:
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def test_declaration_is_typed_and_documented(spec):
    from deepapps_vision.faces.specs import BENCH_OPTIONS, EVAL_OPTIONS, RUN_OPTIONS

    assert spec.input_kind == "media"
    assert spec.options == RUN_OPTIONS and spec.eval_options == EVAL_OPTIONS
    assert spec.bench_options == BENCH_OPTIONS
    for opts in spec.verb_options().values():
        for o in opts:
            assert o.help and o.type != "object", o
    run = {o.name: o for o in spec.options}
    assert (run["upsample"].type, run["upsample"].min, run["upsample"].max) == ("int", 0, 3)
    assert run["detector"].choices == ("hog", "cnn") and run["landmarks"].choices == (5, 68)
    assert run["gallery"].type == "path" and run["out"].type == "path" and run["top_k"].min == 1
    assert all(o.when == CALL for o in spec.options)  # no load-time options: the factory takes none
    assert "video_out" not in run and "k" not in run  # one spelling per concept


def test_runner_methods_take_exactly_the_declared_options(spec):
    from deepapps_vision.faces.runner import FaceRecognitionRunner, make_runner

    assert list(inspect.signature(make_runner).parameters) == ["model", "device", "precision"]
    params = inspect.signature(FaceRecognitionRunner.run_one).parameters
    keyword_only = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    assert keyword_only == {o.name for o in spec.options}
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())  # no catch-all


def test_direct_python_defaults_equal_the_declared_ones(spec):
    from deepapps_vision.faces.evaluate import bench, evaluate
    from deepapps_vision.faces.recognizer import FaceRecognizer
    from deepapps_vision.faces.video import process_video

    declared = {o.name: o.default for o in spec.options}
    for fn in (FaceRecognizer.__init__, process_video):
        for name, default in _keyword_params(fn).items():
            if name in declared:
                assert default == declared[name], (fn.__qualname__, name)
    ev = _keyword_params(evaluate)
    assert list(ev)[:6] == ["model", "dataset", "split", "limit", "device", "precision"]
    assert {k: ev[k] for k in list(ev)[6:]} == {o.name: o.default for o in spec.eval_options}
    be = _keyword_params(bench)
    assert list(be)[:3] == ["model", "device", "precision"]
    assert {k: be[k] for k in list(be)[3:]} == {o.name: o.default for o in spec.bench_options}


def test_recognizer_options_are_checked_by_the_declaration():
    from deepapps import InputError
    from deepapps_vision.faces.recognizer import FaceRecognizer

    with pytest.raises(InputError, match=r"--detector: 'haar' is not one of hog, cnn"):
        FaceRecognizer(detector="haar")
    with pytest.raises(InputError, match=r"--upsample: 9 is above the maximum 3"):
        FaceRecognizer(upsample=9)
    with pytest.raises(InputError, match=r"--landmarks: 7 is not one of 5, 68"):
        FaceRecognizer(landmarks=7)


def _one_line_error(result, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize("command", [["search", "PHOTO"], ["list"], ["remove", "ada"]])
def test_read_commands_refuse_a_gallery_that_does_not_exist(cli, photo, tmp_path, command):
    typo = tmp_path / "typo.db"
    args = ["faces", *[photo if a == "PHOTO" else a for a in command], "-g", str(typo), "--json"]
    line = _one_line_error(CliRunner().invoke(cli, args))
    assert f"no face gallery at {typo}" in line and "deepapps faces enroll" in line
    assert not typo.exists() and list(tmp_path.iterdir()) == [tmp_path / "photo.png"]


def test_the_default_gallery_is_not_created_by_reading_it(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    line = _one_line_error(CliRunner().invoke(cli, ["faces", "list"]))
    assert str(tmp_path / "home" / "faces" / "gallery.db") in line
    assert not (tmp_path / "home" / "faces").exists()


def test_a_folder_like_typo_is_not_created_either(cli, photo, tmp_path):
    line = _one_line_error(CliRunner().invoke(cli, ["faces", "search", photo, "-g", str(tmp_path / "nodir")]))
    assert "no face gallery at" in line and not (tmp_path / "nodir").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["faces", "search", "PHOTO", "--upsample", "abc"],
            "option --upsample: expected a whole number, got 'abc'",
        ),
        (
            ["faces", "verify", "PHOTO", "PHOTO", "--upsample", "7"],
            "option --upsample: 7 is above the maximum 3",
        ),
        (
            ["faces", "enroll", "ada", "PHOTO", "--detector", "haar"],
            "option --detector: 'haar' is not one of",
        ),
        (["faces", "search", "PHOTO", "-k", "0"], "option --top-k: 0 is below the minimum 1"),
        (["faces", "verify", "PHOTO", "PHOTO", "--threshold", "x"], "option --threshold: expected a number"),
        (["faces", "search", "missing.jpg"], "input missing.jpg: file not found"),
        (["faces", "verify", "PHOTO", "missing.jpg"], "input missing.jpg: file not found"),
        (["faces", "enroll", "ada", "missing.jpg"], "input missing.jpg: file not found"),
        (["faces", "enroll", "a/b", "PHOTO"], "identity name 'a/b'"),
        (["faces", "enroll"], "pass NAME and at least one image"),
        (["faces", "enroll", "ada", "PHOTO", "--folder", "."], "not both"),
        (
            ["run", "face-recognition", "PHOTO", "--upsample", "abc"],
            "option --upsample: expected a whole number",
        ),
        (["run", "face-recognition", "PHOTO", "--upsampel", "2"], "did you mean --upsample?"),
        (["run", "face-recognition", "PHOTO", "--top-k", "0"], "option --top-k: 0 is below the minimum 1"),
        (["run", "face-recognition", "missing.jpg"], "input missing.jpg: file not found"),
        (["run", "face-recognition", "notes.txt"], "is not a supported file for this task"),
        (["eval", "face-recognition", "--detectors", "hog,haar"], "option --detectors: 'haar' is not one of"),
        (["eval", "face-recognition", "--size", "big"], "option --size: expected a whole number"),
        (["bench", "face-recognition", "--identities", "0"], "option --identities: 0 is below the minimum 1"),
    ],
)
def test_mistakes_are_one_line_errors_before_anything_loads(cli, photo, tmp_path, monkeypatch, args, message):
    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the mistake was reported")

    monkeypatch.setattr(deepapps, "load", must_not_load)
    monkeypatch.setattr("deepapps_vision.faces.evaluate.evaluate", must_not_load)
    monkeypatch.setattr("deepapps_vision.faces.evaluate.bench", must_not_load)
    (tmp_path / "notes.txt").write_text("not an image")
    gallery = tmp_path / "g.db"
    args = [photo if a == "PHOTO" else str(tmp_path / a) if a == "notes.txt" else a for a in args]
    if args[0] == "faces" and args[1] in ("search", "enroll"):
        args += ["-g", str(gallery)]
    line = _one_line_error(CliRunner().invoke(cli, args))
    assert message in line, line
    assert not gallery.exists()


def test_options_listing_shows_the_declaration(cli):
    out = CliRunner().invoke(cli, ["options", "face-recognition", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)["face-recognition"]
    upsample = next(o for o in data["run"] if o["name"] == "upsample")
    assert (upsample["flag"], upsample["type"], upsample["default"], upsample["max"]) == (
        "--upsample",
        "int",
        1,
        3,
    )
    assert [o["name"] for o in data["bench"]] == ["identities", "queries", "video_frames", "progress"]


def test_run_with_a_missing_gallery_fails_before_the_model_loads(tmp_path, monkeypatch):
    import deepapps
    from deepapps.cli import cli as deepapps_cli

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(deepapps, "load", no_load)
    image = tmp_path / "x.jpg"
    image.write_bytes(b"not checked before the gallery")
    out = CliRunner().invoke(deepapps_cli, ["run", "face-recognition", str(image), "--gallery", str(tmp_path / "typo.db")])
    assert out.exit_code == 2 and "no face gallery at" in out.output and "typo.db" in out.output
    assert not (tmp_path / "typo.db").exists()
