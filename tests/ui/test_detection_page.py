"""AppTest of the object-detection page: sample render, bundled photo, filters, video tracking."""

from __future__ import annotations

APP_TIMEOUT = 180  # model load + first predict on a shared 2-core machine


def _page():
    from deepapps_vision.detection.page import render

    render()


def test_detection_page_sample_photo_filter_and_video():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page, default_timeout=APP_TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.header[0].value == "Object detection"
    # default input: a sample render -> an annotated image and a results table
    assert len(at.get("image")) == 1
    assert at.subheader[0].value.endswith("detection(s)")
    n = int(at.subheader[0].value.split()[0])
    assert n >= 1, "the bundled model finds objects in the default sample render"
    table = at.dataframe[0].value
    assert set(table.columns) >= {"class", "conf", "x1", "y2"} and len(table) == n

    # a strict confidence gives no more boxes; a class filter keeps only that class
    at.slider(key="det_conf").set_value(0.9).run()
    assert int(at.subheader[0].value.split()[0]) <= n
    at.slider(key="det_conf").set_value(0.1).run()
    cls = table["class"].iloc[0]
    at.multiselect(key="det_classes").select(cls).run()
    assert not at.exception, [e.value for e in at.exception]
    if at.dataframe:
        assert set(at.dataframe[0].value["class"]) == {cls}

    # a photo bundled with ultralytics
    at.multiselect(key="det_classes").unselect(cls).run()
    at.radio(key="det_source").set_value("Bundled photo").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="det_photo").value in {"bus.jpg", "zidane.jpg"}
    assert len(at.get("image")) == 1

    # video: the rendered sample clip is tracked
    at.radio(key="det_source").set_value("Video (tracking)").run()
    at.checkbox(key="det_video_sample").check()
    at.number_input(key="det_video_frames").set_value(6)
    at.button(key="det_video_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("6 frames tracked" in s.value for s in at.success), [s.value for s in at.success]


def test_detection_page_refuses_a_pickled_weights_file(tmp_path, monkeypatch):
    """The weights box must not unpickle a .pt unless the user ticks that they trust it."""
    import torch
    from streamlit.testing.v1 import AppTest

    from deepapps_ui.widgets import OTHER_MODEL

    marker = tmp_path / "pwned.txt"

    class CreatesFile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "weights.pt"
    torch.save({"model": CreatesFile()}, evil)
    at = AppTest.from_function(_page, default_timeout=APP_TIMEOUT)
    at.run()
    at.selectbox(key="det_model").set_value(OTHER_MODEL).run()
    at.text_input(key="det_model-other").set_value(str(evil)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.checkbox(key="det_trust_weights").value is False
    assert any("--trust-weights" in e.value for e in at.error), [e.value for e in at.error]
    assert not marker.exists()
