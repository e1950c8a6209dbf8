"""UI fixtures: a tiny in-process plugin with a text task, an image task, a page that raises, and a
pullable model; a plugin whose hook raises; and helpers to drive the app with AppTest.

Tests here depend only on the core, deepapps_ui and these fixtures, so they pass whatever
other plugins are installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

import deepapps
from deepapps import ModelCard, ModelSpec, Option, Result, Runner, TaskSpec, UIPageSpec, hookimpl

APP_TIMEOUT = 60  # seconds per AppTest run: the 2-core CI machine is shared


@dataclass(kw_only=True)
class ShoutResult(Result):
    text: str = ""
    shout: str = ""
    letters: int = 0

    def plot(self):
        from PIL import Image

        return Image.new("RGB", (max(self.letters, 1) * 4, 8), (200, 30, 30))


class ShoutRunner(Runner):
    task = "ui-test-shout"

    def preprocess(self, item, bang):
        if not isinstance(item, str) or not item.strip():
            raise deepapps.InputError("ui-test-shout takes non-empty text")
        return item

    def forward(self, prepared, bang):
        return prepared.upper() + "!" * bang

    def postprocess(self, raw, item, bang):
        return ShoutResult(text=item, shout=raw, letters=sum(c.isalpha() for c in item))


@dataclass(kw_only=True)
class SizeResult(Result):
    width: int = 0
    height: int = 0
    mean_rgb: list[float] = field(default_factory=list)


class SizeRunner(Runner):
    task = "ui-test-size"

    def preprocess(self, item, **kwargs):
        from deepapps.runtime.images import load_image

        return load_image(item)

    def forward(self, prepared, **kwargs):
        import numpy as np

        return prepared.size, np.asarray(prepared, dtype=float).reshape(-1, 3).mean(0)

    def postprocess(self, raw, item, **kwargs):
        (w, h), mean = raw
        return SizeResult(width=w, height=h, mean_rgb=[round(float(v), 1) for v in mean])


def make_shout(model, device, precision):
    return ShoutRunner(model_name=model.name, device=device, precision=precision)


def make_size(model, device, precision):
    return SizeRunner(model_name=model.name, device=device, precision=precision)


def explode():
    raise RuntimeError("this page exploded on purpose")


class UITestPlugin:
    """Two tasks with generic pages, one task whose own page raises, and a model that must be pulled."""

    @hookimpl
    def register_tasks(self, register):
        register(
            TaskSpec(
                name="ui-test-shout",
                title="Shout (UI test)",
                domain="ui-test",
                runner=make_shout,
                default_model="ui-test-shouter",
                inputs="text",
                outputs="the text in capitals",
                input_kind="text",
                options=(Option("bang", "int", 1, "exclamation marks", min=0, max=10),),
            )
        )
        register(
            TaskSpec(
                name="ui-test-size",
                title="Image size (UI test)",
                domain="ui-test",
                runner=make_size,
                default_model="ui-test-sizer",
                inputs="an image",
                outputs="width, height and mean colour",
                input_kind="image",
            )
        )
        register(
            TaskSpec(
                name="ui-test-boom",
                title="Boom (UI test)",
                domain="ui-test",
                runner=make_shout,
                default_model="ui-test-shouter-2",
                inputs="text",
            )
        )

    @hookimpl
    def register_models(self, register):
        register(
            ModelSpec(
                name="ui-test-shouter",
                task="ui-test-shout",
                source="builtin:",
                card=ModelCard(
                    summary="Upper-cases text.",
                    params=1234,
                    license="MIT",
                    training_data="none",
                    metrics={"accuracy": 1.0},
                    metrics_command="deepapps eval ui-test-shout --json",
                ),
            )
        )
        register(
            ModelSpec(
                name="ui-test-remote",
                task="ui-test-shout",
                source="pypi:deepapps-ui-test-weights==9.9.9#weights.bin",
                card=ModelCard(summary="Only on the registry.", params=2_500_000, license="Apache-2.0"),
            )
        )
        register(ModelSpec(name="ui-test-sizer", task="ui-test-size", source="builtin:"))
        register(ModelSpec(name="ui-test-shouter-2", task="ui-test-boom", source="builtin:"))

    @hookimpl
    def register_ui_pages(self, register):
        register(UIPageSpec(task="ui-test-boom", title="Boom page", render=explode))


class HookRaisesPlugin:
    """A plugin that imports fine but whose register_tasks hook raises."""

    @hookimpl
    def register_tasks(self, register):
        raise ValueError("register_tasks of ui-test-broken is broken on purpose")


@pytest.fixture
def ui_plugin():
    deepapps.register_plugin(UITestPlugin(), "ui-test", version="0.0.7")
    yield "ui-test"
    deepapps.unregister_plugin("ui-test")
    _clear_runner_cache()


@pytest.fixture
def broken_plugin():
    deepapps.register_plugin(HookRaisesPlugin(), "ui-test-broken", version="0.0.1")
    yield "ui-test-broken"
    deepapps.unregister_plugin("ui-test-broken")


def _clear_runner_cache() -> None:
    from deepapps_ui import widgets

    widgets._load_runner.clear()


@pytest.fixture
def app_path() -> Path:
    from deepapps_ui import APP_PATH

    return APP_PATH


@pytest.fixture
def app(app_path):
    """An AppTest of the whole app (``deepapps_ui/app.py``), not yet run."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(app_path), default_timeout=APP_TIMEOUT)


@pytest.fixture
def page_opener():
    """``open_page(at, url_path)``: see :func:`open_page`."""
    return open_page


@pytest.fixture
def text_of():
    """``all_text(at)``: see :func:`all_text`."""
    return all_text


def open_page(at, url_path: str):
    """Point an AppTest of the whole app at the navigation page ``url_path`` (call ``.run()`` after).

    ``AppTest.switch_page`` only finds file-backed pages; our pages are callables, which
    Streamlit identifies by the hash of their url path (``st.Page._script_hash``).
    """
    from streamlit.util import calc_hash

    at._page_hash = calc_hash(url_path)
    return at


def all_text(at) -> str:
    """Every markdown, title, header, caption, error and code text an AppTest run produced."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "error",
        "warning",
        "info",
        "success",
        "code",
    ):
        parts += [str(el.value) for el in getattr(at, kind)]
    return "\n".join(parts)
