"""The driving page (AppTest): pick a task and policies, run an episode, see metrics, plots and video,
and compare two policies side by side."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402


def _page():
    from deepapps_driving.page import render

    render("adaptive-cruise")


def _text(at) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def test_run_and_compare_two_policies():
    at = AppTest.from_function(_page, default_timeout=240)
    at.run()
    assert not at.exception, at.exception
    at.selectbox(key="driving-adaptive-cruise-policy-0").set_value("adaptive-cruise-random")
    at.checkbox(key="driving-adaptive-cruise-compare").check()
    at.run()
    assert at.selectbox(key="driving-adaptive-cruise-policy-1").value == "adaptive-cruise-idm"
    at.number_input(key="driving-adaptive-cruise-seed").set_value(2)
    at.checkbox(key="driving-adaptive-cruise-record").uncheck()
    at.button(key="driving-adaptive-cruise-go").click()
    at.run()
    assert not at.exception, at.exception
    text = _text(at)
    assert "**adaptive-cruise-random**" in text and "**adaptive-cruise-idm**" in text
    assert text.count("min_time_headway_s") == 2 and len(at.get("imagelist")) + len(at.get("image")) >= 2
    assert not at.error


def _lane_change_page():
    from deepapps_driving.page import render

    render("lane-change")


def test_the_episode_video_is_shown():
    at = AppTest.from_function(_lane_change_page, default_timeout=240)
    at.run()
    at.selectbox(key="driving-lane-change-policy-0").set_value("lane-change-random")
    at.button(key="driving-lane-change-go").click()
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("video")) == 1 and "**lane-change-random**" in _text(at)


def test_errors_stay_on_the_page():
    at = AppTest.from_function(_page, default_timeout=240)
    at.run()
    at.selectbox(key="driving-adaptive-cruise-policy-0").set_value("Other: a local path or hub id…")
    at.run()
    at.text_input(key="driving-adaptive-cruise-policy-0-other").input("/no/such/policy.safetensors")
    at.checkbox(key="driving-adaptive-cruise-record").check()
    at.button(key="driving-adaptive-cruise-go").click()
    at.run()
    assert not at.exception and at.error and "does not exist" in at.error[0].value
