"""Input checks that run before any model loads, from the task's declared ``input_kind``.

A missing file, a folder given to a task that takes text, an empty message or a folder
without images is reported in one line, in milliseconds, instead of after a model load.
Folders given to image tasks are expanded to the images inside them (sorted).
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .specs import TaskSpec, resolve

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


def check_inputs(task: TaskSpec, inputs: list[str]) -> list[str]:
    """The inputs a CLI run will process, checked and with folders expanded; raise on the first bad one."""
    if not inputs:
        raise InputError(
            f"no input given; usage: deepapps run {task.name} INPUT... ({task.inputs or 'see --help'})"
        )
    return expand(inputs, task.input_kind, task.check_input)


def expand(inputs: list[str], kind: str, check_input=None) -> list[str]:
    """Check ``inputs`` for an input kind (see :data:`deepapps.specs.INPUT_KINDS`); folders of media expand."""
    out: list[str] = []
    for text in inputs:
        if kind == "text":
            if not text.strip():
                raise InputError("empty input text; give a non-empty message")
            out.append(text)
        elif kind in ("image", "media"):
            out.extend(_media(text, videos=kind == "media"))
        elif kind == "file":
            out.append(str(_existing_file(text)))
        elif kind == "custom" and check_input is not None:
            resolve(check_input)(text)
            out.append(text)
        else:
            out.append(text)
    return out


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        raise InputError(f"input {text}: file not found")
    if path.is_dir():
        raise InputError(f"input {text}: is a folder; pass a file")
    return path


def _media(text: str, videos: bool) -> list[str]:
    path = Path(text).expanduser()
    allowed = IMAGE_SUFFIXES | (VIDEO_SUFFIXES if videos else frozenset())
    what = "images or videos" if videos else "images"
    if not path.exists():
        raise InputError(f"input {text}: file not found")
    if path.is_dir():
        found = sorted(str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in allowed)
        if not found:
            raise InputError(
                f"input {text}: folder holds no {what} ({', '.join(sorted(allowed))})"
            )
        return found
    if path.suffix.lower() not in allowed:
        raise InputError(
            f"input {text}: {path.suffix or 'no extension'} is not a supported file for this task; "
            f"expected {what} ({', '.join(sorted(allowed))})"
        )
    return [str(path)]
