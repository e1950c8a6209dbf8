"""The Go page: a real board picture that takes clicks (mapped to intersections), typed moves,
the game buttons, the win-rate graph, SGF analysis from memory, and model choice errors."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from deepapps_games.go.board import gtp_to_move  # noqa: E402
from deepapps_games.go.render import BoardGeometry  # noqa: E402


def _page():
    from deepapps_games.go.ui import render

    render()


def _click(at, key: str, point: int, n: int = 7, shown: float = 0.5):
    """What streamlit-image-coordinates reports for a click on ``point`` of the image shown at ``shown`` scale."""
    geo = BoardGeometry(n, max(28, min(64, 560 // (n + 1))))
    x, y = geo.center(point)
    at.session_state[key] = {
        "x": x * shown,
        "y": y * shown,
        "width": geo.size * shown,
        "height": geo.size * shown,
    }
    return at.run()


def _moves(at) -> list[int]:
    return list(at.session_state["go_moves"])


def _board_keys(at) -> list[str]:
    return [str(el.key) for el in at.get("component_instance")]


def test_go_page_plays_by_click_and_typing():
    at = AppTest.from_function(_page, default_timeout=120)
    at.session_state["go_visits"] = 8  # a small search keeps the test fast
    at.run()
    assert not at.exception, at.exception
    assert _board_keys(at) == ["go-play-0"]  # the clickable board picture, no grid of buttons
    assert not [b for b in at.button if str(b.key or "").startswith("play-")]
    assert any("win probability" in m.label for m in at.metric)
    # click D4 (the centre of 7x7) on the picture shown at half size: our stone, then the engine's
    _click(at, "go-play-0", gtp_to_move("D4", 7))
    assert not at.exception, at.exception
    moves = _moves(at)
    assert moves[0] == gtp_to_move("D4", 7) and len(moves) == 2 and moves[1] != moves[0]
    assert _board_keys(at) == ["go-play-2"]
    # a click on an occupied point is refused with a warning, nothing is played
    _click(at, "go-play-2", gtp_to_move("D4", 7))
    assert any("not a legal move" in w.value for w in at.warning) and _moves(at) == moves
    # a typed move plays too
    at.text_input(key="go-play-2-typed").input("B2").run()
    assert not at.exception, at.exception
    assert _moves(at)[2] == gtp_to_move("B2", 7) and len(_moves(at)) == 4
    # the win-rate graph covers every position so far, from the searches already made
    assert at.get("vega_lite_chart")
    curve = at.session_state["go_curve"]
    played = _moves(at)
    assert all(("go-7x7", 7, 7.5, tuple(played[:k])) in curve for k in range(len(played) + 1))
    assert all(0 <= p <= 1 for p in curve.values())
    # undo takes back our move and the engine's answer; engine move plays ours for us
    at.button(key="go_undo").click().run()
    assert _moves(at) == moves
    at.button(key="go_engine_move").click().run()
    assert len(_moves(at)) == 4
    at.button(key="go_pass").click().run()
    assert _moves(at)[4] == 49 and len(_moves(at)) == 6
    at.button(key="go_new").click().run()
    assert not at.exception, at.exception
    assert _moves(at) == [] and _board_keys(at) == ["go-play-0"]


def test_go_page_analyses_sgf_from_memory():
    before = set(Path(tempfile.gettempdir()).glob("*.sgf"))
    at = AppTest.from_function(_page, default_timeout=120)
    at.session_state["go_visits"] = 8
    at.run()
    at.text_area(key="go_sgf_text").input("(;GM[1]SZ[7]KM[7.5];B[dd];W[cc];B[dc])").run()
    assert not at.exception, at.exception
    assert len(at.metric) >= 2  # the play tab's and the SGF tab's
    assert at.slider(key="go_sgf_ply").value == 3
    at.slider(key="go_sgf_ply").set_value(1).run()
    assert not at.exception, at.exception
    assert any("White to play" in m.label for m in at.metric)
    assert len(at.get("vega_lite_chart")) == 1  # the game's graph (the play tab has one position)
    at.text_area(key="go_sgf_text").input("(;GM[1]SZ[7];B[zz])").run()
    assert any("Cannot read this SGF" in e.value for e in at.error)
    assert set(Path(tempfile.gettempdir()).glob("*.sgf")) == before  # no temp file per parsed SGF


def test_go_page_model_choice():
    at = AppTest.from_function(_page, default_timeout=120)
    at.session_state["go_visits"] = 8
    at.run()
    picker = at.selectbox(key="go_model")
    labels = [o.split(" (")[0] for o in picker.options]  # "go-7x7 (default)"
    assert {"go-7x7", "go-7x7-zero", "go-9x9"} <= set(labels)
    assert picker.value == "go-7x7"  # the task's default, from its registration
    picker.set_value("go-9x9").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="go_board_size-go-9x9").value == 9  # the model's board size
    assert _board_keys(at) == ["go-play-0"]
    from deepapps_ui.widgets import OTHER_MODEL

    at.selectbox(key="go_model").set_value(OTHER_MODEL).run()
    assert not at.exception, at.exception
    assert any("path of a Go network" in i.value for i in at.info)
    at.text_input(key="go_model-other").input("/no/such/net.safetensors").run()
    assert not at.exception, at.exception
    assert any("Cannot load this Go model" in e.value for e in at.error)
