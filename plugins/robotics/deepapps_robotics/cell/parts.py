"""The part classes the cell sorts: the ``scenes`` classes of the vision plugin's renderer."""

from __future__ import annotations


def part_classes() -> tuple[str, ...]:
    """The classes, in the detector's class-id order (from the ``scenes`` renderer's public API)."""
    from deepapps_vision.scenes import CLASSES

    return tuple(CLASSES)
