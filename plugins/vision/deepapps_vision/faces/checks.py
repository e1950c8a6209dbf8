"""Cheap checks of face-recognition run options, made by the core before any model loads."""

from __future__ import annotations

from typing import Any

from .gallery import gallery_path, missing_gallery_error


def check_run(options: dict[str, Any]) -> None:
    """A ``--gallery`` given to ``deepapps run`` must already exist (only ``faces enroll`` creates one)."""
    if options.get("gallery") is None:
        return
    path = gallery_path(options["gallery"])
    if not path.is_file():
        raise missing_gallery_error(path)
