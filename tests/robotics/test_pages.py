"""UI smoke tests: the cell page starts a (stub) cell, takes orders and shows them; the warehouse page
plays both policies and shows the animated grids and the throughput chart."""

from __future__ import annotations

import time

APP_TIMEOUT = 180


def _cell_page():
    from deepapps_robotics.pages.cell_page import render

    render()


def _warehouse_page():
    from deepapps_robotics.pages.warehouse_page import render

    render()


def test_cell_page_runs_a_stub_cell_and_takes_orders():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_cell_page, default_timeout=APP_TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.header[0].value == "Pick-and-place cell"
    at.selectbox(key="cell_kind").set_value("stub")
    at.button(key="cell_start").click().run()
    try:
        assert not at.exception, [e.value for e in at.exception]
        assert any(b.key == "cell_fault_gripper_slip" for b in at.button)
        at.number_input(key="cell_orders").set_value(2)
        at.button(key="cell_send").click().run()
        time.sleep(3)
        at.run()
        text = "\n".join(m.value for m in at.markdown)
        assert "PAGE-00001" in text and "PAGE-00002" in text
        at.button(key="cell_cmd_start").click().run()  # already running: refused with the reason
        assert any("already running" in w.value for w in at.warning)
        at.button(key="cell_fault_camera_dropout").click().run()
        assert any("armed" in i.value for i in at.info)
    finally:
        live = at.session_state["robotics_cell"] if "robotics_cell" in at.session_state else None
        if live is not None:
            live.close()


def test_warehouse_page_plays_both_policies():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_warehouse_page, default_timeout=APP_TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.slider(key="wh_steps").set_value(40)
    at.slider(key="wh_robots").set_value(4)
    at.button(key="wh_play").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("imgs")) == 2 or len(at.get("image")) == 2
    headers = [s.value for s in at.subheader]
    assert any(h.startswith("learned:") for h in headers) and any(h.startswith("scripted:") for h in headers)
    assert "throughput / 100 steps" in "\n".join(m.value for m in at.markdown)
