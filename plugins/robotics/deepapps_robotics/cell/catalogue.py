"""Part master data: the dimensions each part class may show to the overhead depth camera.

A plant keeps such data for every article (from its drawings); this cell's numbers are the ranges
measured on the simulated parts (height of the top above the belt; the narrowest width across the
footprint), each widened by TOLERANCE. The dimension check uses them only to choose between the
classes the detector itself proposed for one footprint; it never adds a class of its own.
"""

from __future__ import annotations

TOLERANCE = 0.004  # metres
# class -> ((top height min, max), (narrowest width min, max)) in metres
DIMENSIONS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "duck": ((0.036, 0.051), (0.031, 0.045)),
    "teddy": ((0.033, 0.039), (0.037, 0.042)),
    "lego": ((0.037, 0.044), (0.050, 0.057)),
    "soccer_ball": ((0.055, 0.061), (0.049, 0.054)),
    "mug": ((0.062, 0.069), (0.044, 0.048)),
    "block": ((0.027, 0.030), (0.044, 0.049)),
}


def fits(cls: str, height: float, width: float) -> bool:
    """Whether a footprint of this height and width can be a part of class ``cls``."""
    if cls not in DIMENSIONS:
        return True
    (h0, h1), (w0, w1) = DIMENSIONS[cls]
    return h0 - TOLERANCE <= height <= h1 + TOLERANCE and w0 - TOLERANCE <= width <= w1 + TOLERANCE
