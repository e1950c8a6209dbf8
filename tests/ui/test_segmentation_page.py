"""AppTest of the segmentation page: clicks (as the image component stores them), a box, everything."""

from __future__ import annotations

APP_TIMEOUT = 180  # model load and a scene render on a shared 2-core machine


def _page():
    from deepapps_vision.segmentation.page import render

    render()


def _caption(at) -> str:
    return "\n".join(str(c.value) for c in at.caption)


def _encoder_runs(at) -> int:
    text = _caption(at)
    return int(text.split("encoder runs so far: ")[1].split()[0])


def test_segmentation_page_clicks_box_and_everything():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page, default_timeout=APP_TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.header[0].value == "Segmentation (SAM)"
    assert "Click on the image" in _caption(at)

    # two clicks, one at a time, as the page records them from streamlit-image-coordinates
    for point, label in (([160.0, 160.0], 1), ([20.0, 20.0], 0)):
        state = at.session_state["seg_prompts"]
        state["points"].append(point)
        state["labels"].append(label)
        at.session_state["seg_prompts"] = state
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    text = _caption(at)
    assert "mask of" in text
    runs = _encoder_runs(at)
    assert at.get("download_button"), "a mask download is offered"
    # each click's logits are kept: the second click went to the decoder with the first one's as mask_input
    logits = at.session_state["seg_prompts"]["logits"]
    assert len(logits) == 2 and logits[0].shape == logits[1].shape and logits[0].ndim == 2
    at.button(key="seg_undo").click().run()
    assert not at.exception and len(at.session_state["seg_prompts"]["logits"]) == 1

    # a box on the same image: the embedding comes from the cache
    state = at.session_state["seg_prompts"]
    state.update(points=[], labels=[], box=[60.0, 60.0, 260.0, 260.0])
    at.session_state["seg_prompts"] = state
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "embedding cached: yes" in _caption(at) and _encoder_runs(at) == runs

    # the refinement toggle starts at the model's setting (on for the bundled model); off gives raw masks
    assert at.toggle(key="seg_refine").value is True
    at.toggle(key="seg_refine").set_value(False).run()
    assert not at.exception, [e.value for e in at.exception]
    text = _caption(at)
    assert "edges: unrefined" in text and "embedding cached: yes" in text and _encoder_runs(at) == runs
    at.toggle(key="seg_refine").set_value(True).run()
    assert "edges: refined" in _caption(at)
    # the click check starts at the model's (local for the bundled model) and can be switched off
    assert at.toggle(key="seg_click_check").value is True and "click check: local" in _caption(at)
    at.toggle(key="seg_click_check").set_value(False).run()
    assert not at.exception and "click check: off" in _caption(at) and _encoder_runs(at) == runs

    at.number_input(key="seg_points_per_side").set_value(4)
    at.slider(key="seg_pred_iou_thresh").set_value(0.0)
    at.slider(key="seg_stability_thresh").set_value(0.0)
    # remade from their boxes (the bundled model's setting) each grid mask costs a crop's encoder run; the
    # grid itself reuses the cached embedding
    assert at.checkbox(key="seg_remask").value is True
    at.checkbox(key="seg_remask").set_value(False)
    at.button(key="seg_everything").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "masks [everything]" in _caption(at) and _encoder_runs(at) == runs
    at.checkbox(key="seg_remask").set_value(True)
    at.number_input(key="seg_points_per_side").set_value(2)
    at.button(key="seg_everything").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "masks [everything]" in _caption(at) and runs < _encoder_runs(at) <= runs + 4
