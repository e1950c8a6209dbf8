"""deepapps-example: a third-party deepapps plugin that extracts an image's colour palette.

The package import stays light (numpy is imported only when a palette is computed), so
``deepapps plugins`` can list it without importing anything heavy. Python API::

    from deepapps_example import extract_palette
    result = extract_palette("photo.jpg", k=5)
    result.colors        # ['#d3a06e', ...] most common first
    result.plot().save("palette.png")

or, the same runner through the framework: ``deepapps.load("color-palette")("photo.jpg", k=5)``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def extract_palette(image: Any, k: int = 5, seed: int = 0):
    """The ``k`` dominant colours of ``image`` (path, bytes, PIL image or HxWx3 array) as a PaletteResult."""
    from .palette import PaletteRunner

    return PaletteRunner(k=k, seed=seed)(image)


__all__ = ["__version__", "extract_palette"]
