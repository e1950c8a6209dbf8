"""AppTest of the face-recognition page: verify, enroll, list, search, delete and the video mode."""

from __future__ import annotations

import pytest

pytest.importorskip("dlib")


def _page():
    from deepapps_vision.faces.ui import render

    render()


def _text(at) -> str:
    parts = []
    for kind in ("header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        parts += [str(el.value) for el in getattr(at, kind)]
    return "\n".join(parts)


def test_faces_page_detect_verify_enroll_search_delete_video(tmp_path, monkeypatch):
    import tempfile

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the page's upload folders go
    at = AppTest.from_function(_page, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.header[0].value == "Face recognition"
    assert at.selectbox(key="faces_model").value == "dlib-resnet-face"  # the shared model picker
    gallery = tmp_path / "home" / "faces" / "gallery.db"
    assert at.text_input(key="faces_gallery_path").value == str(gallery)
    assert "does not exist yet" in _text(at) and not gallery.exists()  # looking does not create it

    # detect: the runner's result, drawn by the shared result view (picture + JSON)
    at.button(key="faces_detect_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.value.startswith("**1 face(s): face [17") for m in at.markdown), _text(at)
    assert len(at.get("image")) == 1 and '"count": 1' in at.json[0].value

    # verify the astronaut against its mirror image (the default samples)
    at.button(key="faces_verify_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value.startswith("Same person: distance 0.") for s in at.success), _text(at)
    # a photo without a face: a clear warning, not an exception
    at.selectbox(key="faces_verify_b_sample").set_value("coffee (no face)").run()
    at.button(key="faces_verify_go").click().run()
    assert any("no face found in the second image" in w.value for w in at.warning)

    # searching before anyone is enrolled says so and creates nothing
    at.button(key="faces_search_go").click().run()
    assert any("enroll someone first" in w.value for w in at.warning) and not gallery.exists()

    # enroll the sample under a name; it shows up in the table
    at.text_input(key="faces_enroll_name").input("Eileen Collins")
    at.checkbox(key="faces_enroll_sample").check()
    at.button(key="faces_enroll_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value.startswith("Eileen Collins: 1 face(s) added") for s in at.success), _text(at)
    assert "| Eileen Collins | 1 |" in _text(at) and gallery.is_file()

    # search the flipped photo: the best match is the enrolled person
    at.button(key="faces_search_go").click().run()
    assert any(s.value.startswith("Best match: Eileen Collins (distance 0.") for s in at.success), _text(at)

    # video file mode on the synthetic clip: fps and the identity are reported, the folder is gone
    at.checkbox(key="faces_video_sample").check()
    at.button(key="faces_video_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    video_msg = [s.value for s in at.success if "fps end to end" in s.value]
    assert video_msg and "Eileen Collins" in video_msg[0], _text(at)
    assert list(scratch.iterdir()) == []  # the clip and the annotated copy were removed after use

    # delete: the gallery is empty again
    at.button(key="faces_delete_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "is empty" in _text(at)


def test_faces_page_inside_the_app(tmp_path, monkeypatch, app, page_opener):
    """The page the plugin registered is the one the app shows for the task, and it works there."""
    from deepapps.plugins import reset

    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    reset()
    at = page_opener(app.run(), "face-recognition").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(h.value == "Face recognition" for h in at.header)
    at.button(key="faces_verify_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value.startswith("Same person: distance 0.") for s in at.success), _text(at)
