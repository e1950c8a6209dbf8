"""Tests a plugin author can copy: run with `pytest examples/deepapps-example/tests`."""

from __future__ import annotations

import importlib.metadata

import numpy as np

import deepapps


def test_entry_point_is_registered():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="deepapps")}
    assert eps["example"] == "deepapps_example.plugin"


def test_plugin_loaded_ok():
    info = {p.name: p for p in deepapps.get_plugins()}["example"]
    assert info.status == "ok", info.error


def test_two_colour_image():
    img = np.zeros((10, 10, 3), dtype=np.uint8)
    img[:, :7] = (255, 255, 255)
    result = deepapps.load("color-palette", k=2)(img)
    assert result.colors == ["#ffffff", "#000000"]
    assert result.fractions == [0.7, 0.3]


def test_page_renders():
    from streamlit.testing.v1 import AppTest

    def page():
        from deepapps_example.page import render

        render()

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "🎨 Colour palette"
    assert len(at.image) == 1
