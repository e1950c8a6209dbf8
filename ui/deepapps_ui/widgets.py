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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

import deepapps
from deepapps import DeepAppsError, ModelNotAvailableError, ModelSpec, Result, TaskSpec
from deepapps.options import Option, OptionError, check_options
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
    """What a generic page should ask for: ``image``, ``file`` or ``text`` (from ``input_kind``, else ``inputs``)."""
    declared = {"image": "image", "media": "image", "text": "text", "file": "file"}.get(spec.input_kind)
    if declared:
        return declared
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
    names = [m.name for m in registry.models(spec.name, components=False)]
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


DEVICE_KEY = "deepapps_device"
THREADS_KEY = "deepapps_threads"


def device_choices() -> list[str]:
    """``auto``, ``cpu`` and whatever accelerators this machine has (torch is imported lazily)."""
    choices = ["auto", "cpu"]
    try:
        import torch

        choices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            choices.append("mps")
    except ImportError:
        pass
    return choices


def runtime_settings() -> tuple[str, int]:
    """The one device and CPU thread count every page uses, set in the sidebar (call it there)."""
    import os

    from deepapps.runtime.threads import thread_count

    cores = os.cpu_count() or 1
    device = st.selectbox("Device", device_choices(), key=DEVICE_KEY,
                          help="Where every page runs its models: auto picks cuda, then mps, then cpu.")
    threads = st.number_input("CPU threads", min_value=1, max_value=cores, value=min(thread_count(), cores),
                              step=1, key=THREADS_KEY, help="torch threads for CPU work (DEEPAPPS_THREADS)")
    if st.session_state.get("_deepapps_threads_set") != threads:
        from deepapps.runtime.threads import set_threads

        set_threads(int(threads))
        st.session_state["_deepapps_threads_set"] = threads
    return device, int(threads)


def current_device() -> str:
    """The sidebar's device (``auto`` before the sidebar has been drawn)."""
    return str(st.session_state.get(DEVICE_KEY, "auto"))


@st.cache_resource(show_spinner="Loading the model …", max_entries=8)
def _load_runner(task: str, model: str | None, device: str, options_json: str) -> deepapps.Runner:
    return deepapps.load(task, model=model, device=device, **json.loads(options_json))


def cached_runner(task: str, model: str | None = None, device: str | None = None, **options: Any) -> deepapps.Runner:
    """``deepapps.load(task, model, device, **options)`` loaded once per process, on the sidebar's device.

    Options are checked against the task's declaration before anything loads (an OptionError shows
    on the page through :func:`page_errors`).
    """
    spec = registry.task(task)
    checked = check_options(spec.options, options, f"task {spec.name!r}", fill_defaults=False)
    encoded = json.dumps({k: _jsonable(v) for k, v in checked.items()}, sort_keys=True)
    return _load_runner(spec.name, model, device or current_device(), encoded)


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


# --- options --------------------------------------------------------------------------------------
def options_form(spec: TaskSpec, key: str | None = None, verb: str = "run") -> dict[str, Any]:
    """One widget per declared option of ``spec`` for ``verb`` (typed, with its range and help).

    Returns only the values the user changed from their defaults, ready for ``deepapps.load`` or a call.
    """
    key = key or f"{spec.name}-{verb}-options"
    changed: dict[str, Any] = {}
    for opt in spec.verb_options()[verb]:
        if not opt.cli:
            continue
        value = option_widget(opt, key=f"{key}-{opt.name}")
        if value is not None and value != opt.default:
            changed[opt.name] = value
    return changed


def option_widget(opt: Option, key: str) -> Any:
    """The Streamlit widget for one option; text that does not parse shows an error and gives None."""
    label = opt.name.replace("_", " ")
    help_text = opt.help + (" (load time)" if opt.when == "load" else "")
    if opt.choices and not opt.multiple:
        choices = list(opt.choices)
        index = choices.index(opt.default) if opt.default in choices else 0
        return st.selectbox(label, choices, index=index, key=key, help=help_text)
    if opt.type == "bool":
        return st.checkbox(label, value=bool(opt.default), key=key, help=help_text)
    if opt.type in ("int", "float") and not opt.multiple and opt.default is not None:
        cast = int if opt.type == "int" else float
        return st.number_input(
            label, value=cast(opt.default), key=key, help=help_text, step=1 if cast is int else None,
            min_value=None if opt.min is None else cast(opt.min),
            max_value=None if opt.max is None else cast(opt.max),
        )
    default = "" if opt.default is None else (
        ",".join(map(str, opt.default)) if isinstance(opt.default, (list, tuple)) else str(opt.default))
    text = st.text_input(label, value=default, key=key, help=help_text, placeholder=opt.describe_type())
    if not text.strip():
        return None
    try:
        return opt.parse(text)
    except OptionError as exc:
        st.error(str(exc))
        return None


# --- inputs ---------------------------------------------------------------------------------------
def task_input(spec: TaskSpec, key: str | None = None) -> Any:
    """The input widget a task needs (decided by :func:`input_kind`).

    An image or file upload returns the uploaded file (run it through :func:`run_on_input`, which
    hands the runner a path that is removed after use); text returns the string. Returns ``None``
    until the user gives something.
    """
    key = key or f"{spec.name}-input"
    kind = input_kind(spec)
    help_text = spec.inputs or None
    if kind == "image":
        upload = st.file_uploader("Image", type=IMAGE_TYPES, key=key, help=help_text)
        if upload is None:
            return None
        image_preview(upload.getvalue(), caption=upload.name)
        return upload
    if kind == "file":
        upload = st.file_uploader("Input file", key=key, help=help_text)
        return upload
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


@contextmanager
def upload_as_file(upload: Any) -> Iterator[str]:
    """An uploaded file written to a private temporary folder for the duration of the block, then removed."""
    name = Path(upload.name).name or "upload.bin"
    with tempfile.TemporaryDirectory(prefix="deepapps-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(upload.getvalue())
        yield str(path)


def run_on_input(runner: deepapps.Runner, value: Any, **call_options: Any) -> Result | list[Result]:
    """Run ``runner`` on what :func:`task_input` returned; an upload is a temporary file named as
    uploaded (removed afterwards), and each result's ``source`` is the uploaded file's name."""
    if isinstance(value, str):
        return runner(value, **call_options)
    with upload_as_file(value) as path:
        result = runner(path, **call_options)
    for r in result if isinstance(result, list) else [result]:
        r.source = Path(value.name).name
    return result


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
