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
