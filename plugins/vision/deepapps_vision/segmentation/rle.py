"""COCO run-length encoding of binary masks, in numpy (no pycocotools needed).

A mask is flattened column by column (Fortran order); ``counts`` alternate runs of 0s and 1s,
starting with 0s. The compressed form is COCO's text encoding of those counts (each count after
the second stored as the difference to the count two before, in 5-bit groups offset by 48), so
``{"size": [h, w], "counts": "..."}`` is read by pycocotools and every COCO tool as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepapps.errors import InputError


def run_lengths(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO counts of a 2-D mask."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(edges).tolist()
    if flat[0]:
        counts.insert(0, 0)  # runs start with background
    return [int(c) for c in counts]


def counts_to_string(counts: list[int]) -> str:
    """COCO's compressed text form of run lengths."""
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(text: str) -> list[int]:
    """Run lengths from COCO's compressed text form."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x, k, more = 0, 0, True
        while more:
            if pos >= len(text):
                raise InputError("RLE counts string ends in the middle of a number")
            c = ord(text[pos]) - 48
            if c < 0 or c > 63:
                raise InputError(f"RLE counts string holds an invalid character {text[pos]!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode(mask: np.ndarray) -> dict[str, Any]:
    """``{"size": [h, w], "counts": str}`` for a 2-D boolean mask."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise InputError(f"RLE encodes 2-D masks; got shape {m.shape}")
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": counts_to_string(run_lengths(m))}


def decode(rle: dict[str, Any]) -> np.ndarray:
    """The boolean mask of a COCO RLE (compressed string or a list of counts)."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not a COCO RLE (need 'size' [h, w] and 'counts'): {exc}") from exc
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    runs = string_to_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if any(r < 0 for r in runs) or sum(runs) != h * w:
        raise InputError(f"RLE counts cover {sum(runs)} pixels, not {h}x{w} = {h * w}")
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    return flat.reshape((w, h)).T.copy() if h and w else np.zeros((h, w), dtype=bool)


def area(rle: dict[str, Any]) -> int:
    """Foreground pixels of an RLE, without decoding it."""
    counts = rle["counts"]
    runs = string_to_counts(counts) if isinstance(counts, str) else list(counts)
    return int(sum(runs[1::2]))


def bbox_xywh(mask: np.ndarray) -> list[int]:
    """COCO box ``[x, y, w, h]`` of a mask's pixels (zeros for an empty mask)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0, 0, 0, 0]
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]
