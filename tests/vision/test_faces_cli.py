"""``deepapps faces ...``, ``deepapps run face-recognition`` (image + video), eval and bench, small sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib")
from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402


@pytest.fixture(scope="module")
def cli():
    from deepapps.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    return cli


@pytest.fixture
def photos(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEEPAPPS_NO_PROGRESS", "1")
    astro = tmp_path / "astro.jpg"
    Image.fromarray(skdata.astronaut()).save(astro)
    flipped = tmp_path / "flipped.png"
    Image.fromarray(np.ascontiguousarray(skdata.astronaut()[:, ::-1])).save(flipped)
    coffee = tmp_path / "coffee.jpg"
    Image.fromarray(skdata.coffee()).save(coffee)
    return {"astro": str(astro), "flipped": str(flipped), "coffee": str(coffee), "tmp": tmp_path}


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_faces_commands_round_trip(cli, photos):
    run = CliRunner().invoke
    gal = str(photos["tmp"] / "g.db")
    out = _json(run(cli, ["faces", "enroll", "eileen", photos["astro"], "--gallery", gal, "--json"]))
    assert out["added"] == 1 and out["identities_total"] == 1 and out["failed"] == {}
    again = _json(run(cli, ["faces", "enroll", "eileen", photos["astro"], "--gallery", gal, "--json"]))
    assert again["added"] == 0 and again["unchanged"] == 1
    listed = _json(run(cli, ["faces", "list", "--gallery", gal, "--json"]))
    assert [(i["name"], i["embeddings"]) for i in listed["identities"]] == [("eileen", 1)]
    found = _json(run(cli, ["faces", "search", photos["flipped"], "--gallery", gal, "--json"]))
    assert found["threshold"] == 0.6 and found["model"] == "dlib-resnet-face"
    (row,) = found["results"]
    assert row["image"] == photos["flipped"] and row["face_found"] and row["error"] is None
    assert row["matches"][0]["name"] == "eileen" and row["matches"][0]["same"]
    same = _json(run(cli, ["faces", "verify", photos["astro"], photos["flipped"], "--json"]))
    assert same["same"] is True and same["distance"] < 0.6
    assert same["source"] == f"{photos['astro']} vs {photos['flipped']}"
    removed = _json(run(cli, ["faces", "remove", "eileen", "--gallery", gal, "--json"]))
    assert removed["removed"] is True and removed["faces"] == 1
    missing = run(cli, ["faces", "remove", "eileen", "--gallery", gal, "--json"])
    assert missing.exit_code == 2 and missing.stdout == ""
    assert "no identity named 'eileen'" in missing.stderr
    empty = run(cli, ["faces", "search", photos["flipped"], "--gallery", gal])
    assert empty.exit_code == 2 and "is empty; enroll someone first" in empty.stderr


def test_several_inputs_each_name_their_file_and_failures_exit_1(cli, photos):
    run = CliRunner().invoke
    gal = str(photos["tmp"] / "s.db")
    broken = photos["tmp"] / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    enrolled = run(cli, ["faces", "enroll", "eileen", photos["astro"], photos["coffee"], str(broken), "-g", gal,
                         "--json"])  # fmt: skip
    assert enrolled.exit_code == 1  # two inputs failed; the good one is enrolled all the same
    report = json.loads(enrolled.stdout)
    assert report["added"] == 1 and report["no_face"] == [str(Path(photos["coffee"]).resolve())]
    assert list(report["failed"]) == [str(broken)] and "cannot be decoded" in report["failed"][str(broken)]
    assert "2 of 3 input(s) failed" in enrolled.stderr and "broken.jpg" in enrolled.stderr

    searched = run(cli, ["faces", "search", photos["flipped"], photos["coffee"], photos["astro"], "-g", gal])
    assert searched.exit_code == 1
    lines = searched.stdout.splitlines()
    assert lines[0] == photos["flipped"] and lines[1].split()[0] == "eileen" and lines[1].endswith("MATCH")
    assert lines[2] == f"{photos['coffee']}: no face found"
    assert lines[3] == photos["astro"] and "distance 0.0000" in lines[4]
    assert f"1 of 3 input(s) failed: {photos['coffee']} (no face found)" in searched.stderr

    ran = run(cli, ["run", "face-recognition", photos["astro"], photos["coffee"], photos["flipped"], "--gallery",
                    gal, "--top-k", "2", "--json"])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    results = json.loads(ran.stdout)
    assert [r["source"] for r in results] == [photos["astro"], photos["coffee"], photos["flipped"]]
    assert [r["count"] for r in results] == [1, 0, 1]
    flipped_face = results[2]["faces"][0]
    assert flipped_face["identity"] == "eileen" and flipped_face["matches"][0]["name"] == "eileen"
    assert list(results[0]["timings"]) == ["load", "preprocess", "detect", "embed", "search", "total"]
    text = run(cli, ["run", "face-recognition", photos["coffee"], photos["astro"]])
    assert [line.split(": ")[0] for line in text.stdout.splitlines()] == [photos["coffee"], photos["astro"]]

    noface = run(cli, ["faces", "verify", photos["astro"], photos["coffee"], "--json"])
    assert (
        noface.exit_code == 1 and json.loads(noface.stdout)["reason"] == "no face found in the second image"
    )
    assert "no face found in the second image" in noface.stderr


def test_folder_enroll_from_the_cli(cli, photos):
    people = photos["tmp"] / "people"
    (people / "eileen").mkdir(parents=True)
    Image.fromarray(skdata.astronaut()).save(people / "eileen" / "1.jpg")
    (people / "nobody").mkdir()
    Image.fromarray(skdata.coffee()).save(people / "nobody" / "1.jpg")
    gal = str(photos["tmp"] / "f.db")
    first = CliRunner().invoke(cli, ["faces", "enroll", "--folder", str(people), "-g", gal, "--json"])
    assert first.exit_code == 1 and "nobody" in first.stderr  # the photo without a face is named
    out = json.loads(first.stdout)
    assert out["added"] == 1 and len(out["no_face"]) == 1 and out["identities_total"] == 1
    (people / "nobody" / "1.jpg").unlink()
    out2 = _json(CliRunner().invoke(cli, ["faces", "enroll", "--folder", str(people), "-g", gal, "--json"]))
    assert out2["added"] == 0 and out2["unchanged"] == 1


def test_run_image_and_video_with_a_gallery(cli, photos):
    from deepapps_vision.faces import Gallery
    from deepapps_vision.faces.evaluate import make_face_video

    gal = photos["tmp"] / "v.db"
    Gallery(gal).enroll("eileen", [photos["astro"]])
    res = _json(
        CliRunner().invoke(
            cli, ["run", "face-recognition", photos["flipped"], "--gallery", str(gal), "--json"]
        )
    )
    face = res[0]["faces"][0]
    assert face["identity"] == "eileen" and face["distance"] < 0.6 and res[0]["threshold"] == 0.6
    clip = make_face_video(photos["tmp"] / "clip.mp4", frames=12)
    out = photos["tmp"] / "annotated.mp4"
    vid = _json(
        CliRunner().invoke(
            cli, ["run", "face-recognition", str(clip), "--gallery", str(gal), f"--out={out}", "--json"]
        )
    )[0]
    assert vid["frames"] == 12 and vid["width"] == 640 and vid["height"] == 480
    assert vid["faces_per_frame"] >= 0.9 and vid["identities"].get("eileen", 0) >= 10
    assert vid["fps"] > 0 and out.stat().st_size > 10_000
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()


def test_eval_and_bench_small(cli, photos):
    ev = _json(
        CliRunner().invoke(
            cli, ["eval", "face-recognition", "--limit", "4", "--detectors", "hog", "--no-progress", "--json"]
        )
    )
    m = ev["metrics"]
    assert ev["n"] == 8 and ev["dataset"] == "lfw-subset"
    assert m["hog_recall@score0.0"] >= 0.75 and m["hog_fpr@score0.0"] <= 0.25
    assert m["verify_same_under_threshold"] >= 0.9 and m["verify_different_over_threshold"] >= 0.8
    assert 0 <= m["verify_tar_at_far_0.1"] <= 1 and m["verify_auc"] > 0.8
    b = _json(
        CliRunner().invoke(
            cli,
            ["bench", "face-recognition", "--identities", "500", "--queries", "20", "--video-frames", "10",
             "--no-progress", "--json"],
        )
    )  # fmt: skip
    f = b["figures"]
    assert f["search_recall_at_1_vs_brute_force"]["value"] == 1.0
    assert f["search_p95"]["unit"] == "ms" and f["video_fps_640x480_hog"]["value"] > 0
