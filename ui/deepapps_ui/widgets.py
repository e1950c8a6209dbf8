"""Shared Streamlit widgets for deepapps pages: import them from plugin pages.

::

    import streamlit as st
    from deepapps_ui import widgets

    def render():
        model = widgets.model_picker("object-detection")
        image = widgets.task_input(registry.task("object-detection"))
        if image is not None and st.button("Detect"):
            widgets.result_view(widgets.cached_runner("object-detection", model)(image))

Every widget takes a ``key`` prefix so one page can hold several of them.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

import deepapps
from deepapps import DeepAppsError, ModelNotAvailableError, ModelSpec, Result, TaskSpec
from deepapps.registry import registry

OTHER_MODEL = "Other: a local path or hub id…"
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif"]
_IMAGE_WORDS = ("image", "photo", "picture", "frame", "rgb")
_FILE_WORDS = ("video", "audio", "file", "path", ".pdb", "pdb file", "folder")
PULLABLE = {"pypi", "hf"}


# --- formatting helpers ---------------------------------------------------------------------------
def md_escape(value: Any) -> str:
    """Text that is safe inside a markdown table cell."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A markdown table (rendered as real HTML text, so browsers and tests can read it)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_params(params: int | None) -> str:
    """``2_600_000`` -> ``2.6 M``; ``None`` -> ``unknown``."""
    if params is None:
        return "unknown"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if params >= size:
            return f"{params / size:.3g} {unit}"
    return str(params)


def input_kind(spec: TaskSpec) -> str:
    """What a generic page should ask for, read from ``TaskSpec.inputs``: ``image``, ``file`` or ``text``."""
    text = f"{spec.inputs} {spec.name}".lower()
    if any(word in text for word in _IMAGE_WORDS):
        return "image"
    if any(word in text for word in _FILE_WORDS):
        return "file"
    return "text"


def is_available(spec: ModelSpec) -> bool:
    """Whether the model's weights are on this machine (never raises)."""
    from deepapps.runtime.pull import is_available as _is_available

    try:
        return _is_available(spec)
    except Exception:  # a malformed source must not take a page down: treat it as missing
        return False


# --- models ---------------------------------------------------------------------------------------
def model_picker(task: str, key: str | None = None, label: str = "Model") -> str | None:
    """A select box of the task's registered models (default first) plus a free path/hub-id field.

    Returns the chosen model name (or path), or ``None`` while the free field is empty.
    """
    key = key or f"{task}-model"
    spec = registry.task(task)
    names = [m.name for m in registry.models(spec.name)]
    if spec.default_model in names:
        names.remove(spec.default_model)
        names.insert(0, spec.default_model)

    def label_of(name: str) -> str:
        if name == OTHER_MODEL:
            return name
        marks = []
        if name == spec.default_model:
            marks.append("default")
        if not is_available(registry.model(name)):
            marks.append("not downloaded")
        return f"{name} ({', '.join(marks)})" if marks else name

    choice = st.selectbox(label, names + [OTHER_MODEL], format_func=label_of, key=key)
    if choice == OTHER_MODEL:
        typed = st.text_input("Model path or hub id", key=f"{key}-other").strip()
        return typed or None
    return choice


def model_card(spec: ModelSpec, key: str | None = None, show_pull: bool = True) -> None:
    """A model's card: parameters, license, source, training data, metrics and the commands behind them."""
    card = spec.card
    available = is_available(spec)
    if card.summary:
        st.markdown(card.summary)
    rows = [
        ["Task", f"`{spec.task}`"],
        ["Plugin", spec.plugin or "-"],
        ["Parameters", format_params(card.params)],
        ["License", card.license],
        ["Source", f"`{spec.source}`"],
        ["Size", f"{spec.size_mb:g} MB" if spec.size_mb else "-"],
        ["Training data", card.training_data or "-"],
        ["On this machine", "yes" if available else "no (pull it first)"],
    ]
    st.markdown(md_table(["", ""], rows))
    if card.metrics:
        st.markdown("**Metrics**")
        st.markdown(md_table(["metric", "value"], [[k, v] for k, v in card.metrics.items()]))
    if card.metrics_command:
        st.caption("Measured with")
        st.code(card.metrics_command, language="bash")
    if card.training_command:
        st.caption("Trained with")
        st.code(card.training_command, language="bash")
    if card.limitations:
        st.caption(f"Limitations: {card.limitations}")
    if card.citation:
        st.caption(f"Cite: {card.citation}")
    if not available and show_pull:
        pull_button(spec, key=key)


def pull_button(spec: ModelSpec, key: str | None = None) -> bool:
    """For a model that is not on this machine: a button that runs ``deepapps pull`` with a spinner.

    Returns True once the model is available. Failures (offline, bad source) show as an error,
    never an exception.
    """
    if is_available(spec):
        return True
    if spec.source_kind not in PULLABLE:
        st.warning(
            f"Model `{spec.name}` is missing and cannot be pulled automatically (source `{spec.source}`)."
        )
        return False
    st.info(f"Model `{spec.name}` is not on this machine yet (source `{spec.source}`).")
    if st.button(f"Pull {spec.name}", key=key or f"pull-{spec.name}", icon=":material/download:"):
        from deepapps.runtime.pull import pull

        with st.spinner(f"Fetching {spec.name} from {spec.source} …"):
            try:
                path = pull(spec, progress=False)
            except DeepAppsError as exc:
                st.error(f"Could not pull `{spec.name}`: {exc}")
                return False
            except Exception as exc:  # network stacks raise many kinds
                st.error(f"Could not pull `{spec.name}`: {type(exc).__name__}: {exc}")
                return False
        st.success(f"Pulled `{spec.name}` to `{path}`")
        return True
    return False


@st.cache_resource(show_spinner="Loading the model …", max_entries=8)
def _load_runner(task: str, model: str | None, device: str, options_json: str) -> deepapps.Runner:
    return deepapps.load(task, model=model, device=device, **json.loads(options_json))


def cached_runner(
    task: str, model: str | None = None, device: str = "auto", **options: Any
) -> deepapps.Runner:
    """``deepapps.load(task, model, device, **options)``, loaded once per process (``st.cache_resource``)."""
    return _load_runner(task, model, device, json.dumps(options, sort_keys=True, default=str))


# --- inputs ---------------------------------------------------------------------------------------
def task_input(spec: TaskSpec, key: str | None = None) -> Any:
    """The input widget a task needs (decided by :func:`input_kind`).

    Image and file uploads return a local file path (what the CLI would pass); text returns
    the string. Returns ``None`` until the user gives something.
    """
    key = key or f"{spec.name}-input"
    kind = input_kind(spec)
    help_text = spec.inputs or None
    if kind == "image":
        upload = st.file_uploader("Image", type=IMAGE_TYPES, key=key, help=help_text)
        if upload is None:
            return None
        path = save_upload(upload)
        image_preview(path, caption=upload.name)
        return path
    if kind == "file":
        upload = st.file_uploader("Input file", key=key, help=help_text)
        return None if upload is None else save_upload(upload)
    text = st.text_area("Input", key=key, help=help_text, placeholder=spec.inputs or "Type the input here")
    return text if text.strip() else None


def image_preview(source: Any, caption: str = "", width: int = 320) -> bool:
    """Show an image (path, bytes, PIL, array); a file that is not a readable image shows a warning."""
    from deepapps.runtime.images import load_image

    try:
        st.image(load_image(source, name=caption or None), caption=caption or None, width=width)
    except DeepAppsError as exc:
        st.warning(f"Cannot preview this image: {exc}")
        return False
    return True


_UPLOADS = tempfile.TemporaryDirectory(prefix="deepapps-ui-")  # removed when the server exits


def save_upload(upload: Any) -> str:
    """Write an uploaded file once into this process's upload folder (original name) and return its path."""
    name = Path(upload.name).name or "upload.bin"
    folder = Path(_UPLOADS.name) / str(getattr(upload, "file_id", None) or abs(hash(upload.getvalue())))
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(upload.getvalue())
    return str(path)


def options_input(key: str, help_text: str = "") -> dict[str, Any]:
    """Task options typed as on the command line (``--conf 0.5 --k 3``); bad syntax shows an error."""
    from deepapps.cli import parse_extra

    raw = st.text_input(
        "Options", key=key, placeholder="--name value ...", help=help_text or "Task options, as on the CLI"
    )
    if not raw.strip():
        return {}
    try:
        return parse_extra(shlex.split(raw))
    except Exception as exc:
        st.error(f"Could not read the options: {exc}")
        return {}


# --- results --------------------------------------------------------------------------------------
def result_view(result: Result | list[Result], key: str | None = None) -> None:
    """``result.plot()`` when the task has a picture, per-stage timings, and ``result.to_dict()`` as JSON."""
    results = result if isinstance(result, list) else [result]
    for i, res in enumerate(results):
        if len(results) > 1:
            st.subheader(f"Result {i + 1}")
        try:
            picture = res.plot()
        except NotImplementedError:
            picture = None
        except Exception as exc:
            picture = None
            st.warning(f"plot() failed: {type(exc).__name__}: {exc}")
        if picture is not None:
            st.image(picture, caption=f"{res.task} · {res.model}")
        if res.timings:
            st.caption(" · ".join(f"{stage} {ms:.1f} ms" for stage, ms in res.timings.items()))
        st.json(res.to_dict(), expanded=2)


@contextmanager
def page_errors(what: str) -> Iterator[None]:
    """Show an exception raised inside the block on the page instead of stopping the app.

    deepapps errors (bad input, missing model) show as one line; anything else shows its
    traceback with ``st.exception``. Streamlit's own stop/rerun signals pass through.
    """
    try:
        yield
    except ModelNotAvailableError as exc:
        st.error(f"{what}: {exc}")
    except DeepAppsError as exc:
        st.error(f"{what}: {exc}")
    except Exception as exc:
        st.error(f"{what} raised {type(exc).__name__}: {exc}")
        st.exception(exc)
