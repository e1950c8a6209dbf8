"""The Go page renders, plays a move against the engine, and analyses a pasted SGF."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402


def _page():
    from deepapps_games.go.ui import render

    render()


def test_go_page_plays_and_analyses():
    at = AppTest.from_function(_page, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    # the board is a grid of buttons (7x7 by default) plus Pass/Undo/New game
    point_buttons = [b for b in at.button if str(b.key or "").startswith("play-")]
    assert len(point_buttons) == 49
    assert any("win probability" in m.label for m in at.metric)
    at.slider[0].set_value(16).run()  # fewer visits keeps the test fast
    # click the centre point: our stone appears and the engine answers
    at.button(key="play-24").click().run()
    assert not at.exception, at.exception
    stones = [b.label for b in at.button if str(b.key or "").startswith("play-")]
    assert stones.count("⚫") == 1 and stones.count("⚪") == 1
    # SGF tab: paste a game and see analysis
    at.text_area[0].input("(;GM[1]SZ[7]KM[7.5];B[dd];W[cc];B[dc])").run()
    assert not at.exception, at.exception
    sgf_buttons = [b for b in at.button if str(b.key or "").startswith("sgf-")]
    assert len(sgf_buttons) == 49
    assert len(at.metric) >= 2
    at.text_area[0].input("(;GM[1]SZ[7];B[zz])").run()
    assert any("Cannot read this SGF" in e.value for e in at.error)
    # every registered Go model is offered, and a file path can be given instead
    assert {"go-7x7", "go-7x7-zero"} <= set(at.selectbox(key="go_model").options)
    at.selectbox(key="go_model").set_value("other (path)").run()
    assert not at.exception, at.exception
    assert any("path of a Go network" in i.value for i in at.info)
    at.text_input[0].input("/no/such/net.safetensors").run()
    assert not at.exception, at.exception
    assert any("Cannot load this Go model" in e.value for e in at.error)
