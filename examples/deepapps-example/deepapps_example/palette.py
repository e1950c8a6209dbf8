"""Colour-palette extraction: k-means (k-means++ start, Lloyd steps) over an image's pixels, in numpy.

This module holds everything the task needs at run time: the runner the ``color-palette``
task builds, its Result, a synthetic held-out dataset with known palettes, and the
``evaluate`` / ``bench`` entry points behind ``deepapps eval`` and ``deepapps bench``.
It is imported only when the task runs, never while deepapps lists plugins.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import deepapps
from deepapps import BenchReport, EvalReport, InputError, ModelRef, Result, Runner
from deepapps.results import private
from deepapps.runtime.images import load_image

TASK = "color-palette"
MODEL = "kmeans-palette"
THUMBNAIL = 160  # pixels on the long side; palettes barely change above this, run time does


def kmeans(
    pixels: np.ndarray, k: int, seed: int = 0, max_iter: int = 50, n_init: int = 3, tol: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Cluster ``pixels`` (N x 3 float, 0-255) into ``k`` centres; the best of ``n_init`` starts.

    Returns ``(centres k x 3, labels N, mean squared distance, iterations of the best start)``.
    Each start is k-means++ (a new centre is drawn with probability proportional to its squared
    distance from the nearest chosen one) followed by Lloyd steps, so results depend only on ``seed``.
    """
    rng = np.random.default_rng(seed)
    codes = np.round(pixels).astype(np.int64) @ np.array([65536, 256, 1])
    k = min(k, len(np.unique(codes)))  # never more centres than distinct colours
    best = None
    for _ in range(max(1, n_init)):
        run = _lloyd(pixels, _kmeans_pp(pixels, k, rng), max_iter, tol)
        if best is None or run[2] < best[2]:
            best = run
    return best


def _sq_dist(pixels: np.ndarray, centres: np.ndarray, sq_norms: np.ndarray) -> np.ndarray:
    d = sq_norms[:, None] - 2.0 * pixels @ centres.T + (centres**2).sum(1)[None, :]
    return np.maximum(d, 0.0)


def _kmeans_pp(pixels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = len(pixels)
    centres = np.empty((k, 3), dtype=np.float64)
    centres[0] = pixels[rng.integers(n)]
    nearest = ((pixels - centres[0]) ** 2).sum(1)
    for i in range(1, k):
        total = nearest.sum()
        centres[i] = pixels[rng.choice(n, p=nearest / total) if total > 0 else rng.integers(n)]
        nearest = np.minimum(nearest, ((pixels - centres[i]) ** 2).sum(1))
    return centres


def _lloyd(
    pixels: np.ndarray, centres: np.ndarray, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, float, int]:
    k = len(centres)
    sq_norms = (pixels**2).sum(1)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        dist = _sq_dist(pixels, centres, sq_norms)
        labels = dist.argmin(1)
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        sums = np.stack([np.bincount(labels, weights=pixels[:, c], minlength=k) for c in range(3)], 1)
        new = centres.copy()
        filled = counts > 0
        new[filled] = sums[filled] / counts[filled, None]
        for j in np.flatnonzero(~filled):  # an empty cluster restarts at the worst-served pixel
            new[j] = pixels[dist.min(1).argmax()]
        moved = float(np.abs(new - centres).max())
        centres = new
        if moved < tol:
            break
    dist = _sq_dist(pixels, centres, sq_norms)
    labels = dist.argmin(1)
    inertia = float(dist[np.arange(len(pixels)), labels].mean())
    return centres, labels, inertia, iterations


def _hex(rgb: np.ndarray) -> str:
    r, g, b = (int(round(float(c))) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(kw_only=True)
class PaletteResult(Result):
    """The dominant colours of one image, most common first."""

    colors: list[str] = field(default_factory=list)  # "#rrggbb"
    rgb: list[list[int]] = field(default_factory=list)
    fractions: list[float] = field(default_factory=list)  # share of pixels, sums to 1
    k: int = 0
    iterations: int = 0
    rms_error: float = 0.0  # RMS distance (0-255 RGB units) from a pixel to its palette colour
    image_size: list[int] = field(default_factory=list)  # width, height of the input
    image: Any = private()  # the thumbnail that was clustered (PIL), for plot()

    def plot(self):
        """The clustered thumbnail above a strip of the palette, each colour as wide as its share."""
        from PIL import Image, ImageDraw

        thumb = self.image if self.image is not None else Image.new("RGB", (THUMBNAIL, THUMBNAIL), "white")
        width = max(thumb.width, 320)
        strip_h = 48
        canvas = Image.new("RGB", (width, thumb.height + strip_h + 20), "white")
        canvas.paste(thumb, ((width - thumb.width) // 2, 0))
        draw = ImageDraw.Draw(canvas)
        x = 0.0
        top = thumb.height + 4
        for i, (color, share) in enumerate(zip(self.colors, self.fractions, strict=True)):
            x1 = width if i == len(self.colors) - 1 else x + share * width
            draw.rectangle([int(x), top, max(int(x1) - 1, int(x)), top + strip_h], fill=color)
            if x1 - x > 60:
                r, g, b = self.rgb[i]
                ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"
                draw.text((int(x) + 4, top + 4), f"{color}\n{share:.0%}", fill=ink)
            x = x1
        draw.text((4, top + strip_h + 4), f"k={self.k}  rms error {self.rms_error:.1f}", fill="black")
        return canvas

    def summary(self) -> str:
        parts = ", ".join(f"{c} {f:.0%}" for c, f in zip(self.colors, self.fractions, strict=True))
        return f"{self.k} colours: {parts}"


class PaletteRunner(Runner):
    """``PaletteRunner()(image, k=5)`` -> :class:`PaletteResult`.

    The options (``k``, ``seed``, ``max_iter``, ``n_init``) are declared once in ``plugin.py``;
    deepapps checks them and fills in their defaults before each call.
    """

    task = TASK

    def __init__(self, model_name: str = MODEL, device: str = "cpu", precision: str = "fp32") -> None:
        super().__init__(model_name, device, precision)

    def preprocess(self, item: Any, k: int, seed: int, max_iter: int, n_init: int):
        image = load_image(item)
        thumb = image.copy()
        thumb.thumbnail((THUMBNAIL, THUMBNAIL))
        pixels = np.asarray(thumb, dtype=np.float64).reshape(-1, 3)
        return {"pixels": pixels, "thumb": thumb, "size": [image.width, image.height]}

    def forward(self, prepared: dict, k: int, seed: int, max_iter: int, n_init: int) -> dict:
        centres, labels, inertia, iterations = kmeans(
            prepared["pixels"], k, seed=seed, max_iter=max_iter, n_init=n_init
        )
        # the thumbnail and input size travel on to postprocess with the clusters
        return {
            **prepared,
            "centres": centres,
            "labels": labels,
            "inertia": inertia,
            "iterations": iterations,
        }

    def postprocess(self, raw: dict, item: Any, **_options: Any) -> PaletteResult:
        centres = raw["centres"]
        counts = np.bincount(raw["labels"], minlength=len(centres)).astype(np.float64)
        order = np.argsort(-counts, kind="stable")
        fractions = counts[order] / counts.sum()
        centres = np.clip(centres[order], 0, 255)
        return PaletteResult(
            colors=[_hex(c) for c in centres],
            rgb=[[int(round(float(v))) for v in c] for c in centres],
            fractions=[round(float(f), 4) for f in fractions],
            k=len(centres),
            iterations=raw["iterations"],
            rms_error=round(float(np.sqrt(raw["inertia"])), 3),
            image_size=raw["size"],
            image=raw["thumb"],
        )


def make_runner(model: ModelRef, device: str, precision: str) -> PaletteRunner:
    """Runner factory registered in the TaskSpec. k-means needs no weights and runs on CPU (numpy)."""
    if model.kind != "registered":
        raise InputError(
            f"color-palette has no weight files to load; {model.name!r} is not a model it can use. "
            f"Use the builtin model {MODEL!r} (the default)"
        )
    return PaletteRunner(model.name, device, precision)


# --- a held-out synthetic dataset with known palettes ------------------------------------------------
SPLIT_SEEDS = {"train": 1000, "val": 2000, "test": 3000}


def _distinct_colors(rng: np.random.Generator, k: int, min_dist: float = 80.0) -> np.ndarray:
    colors: list[np.ndarray] = []
    while len(colors) < k:
        c = rng.integers(0, 256, size=3).astype(np.float64)
        if all(np.linalg.norm(c - o) >= min_dist for o in colors):
            colors.append(c)
    return np.stack(colors)


def synthetic_palettes(split: str = "test", n: int | None = None, size: int = 96) -> list[dict[str, Any]]:
    """Images made of 2-6 flat colour bands plus Gaussian noise (sigma 16), with their true palettes.

    Each split has its own seed, so ``test`` never overlaps ``train``. Items are dicts with
    ``image`` (HxWx3 uint8), ``colors`` (k x 3) and ``fractions`` (share of pixels per colour).
    """
    if split not in SPLIT_SEEDS:
        raise InputError(f"unknown split {split!r}; use one of {', '.join(SPLIT_SEEDS)}")
    n = 100 if n is None else int(n)
    rng = np.random.default_rng(SPLIT_SEEDS[split])
    items = []
    for _ in range(n):
        k = int(rng.integers(2, 7))
        colors = _distinct_colors(rng, k)
        shares = rng.dirichlet(np.full(k, 3.0)) * 0.7 + 0.3 / k  # every colour holds >= 5 % of pixels
        bounds = np.round(np.cumsum(shares) * size).astype(int)
        bounds[-1] = size
        band = np.searchsorted(bounds, np.arange(size), side="right")
        label_map = np.tile(band, (size, 1))
        if rng.random() < 0.5:
            label_map = label_map.T
        image = colors[label_map] + rng.normal(0, 16, size=(size, size, 3))
        fractions = np.bincount(label_map.ravel(), minlength=k) / label_map.size
        items.append(
            {
                "image": np.clip(np.round(image), 0, 255).astype(np.uint8),
                "colors": colors,
                "fractions": fractions,
            }
        )
    return items


def evaluate(
    model: ModelRef, dataset: str | None, split: str, limit: int | None, device: str, precision: str,
    k: int | None, seed: int, n: int
) -> EvalReport:
    """Palette error on the synthetic held-out split: for each true colour, the distance to the nearest
    extracted colour (RGB units, 0-255), how many are found within 20 units, and the share error."""
    t0 = time.perf_counter()
    items = synthetic_palettes(split, n=min(limit or n, n))
    runner = deepapps.load(TASK, model, device=device, seed=seed)
    color_err, shares_err, found = [], [], 0
    for item in items:
        result = runner(item["image"], k=k or len(item["colors"]))
        predicted = np.asarray(result.rgb, dtype=np.float64)
        for true_c, true_f in zip(item["colors"], item["fractions"], strict=True):
            d = np.linalg.norm(predicted - true_c, axis=1)
            j = int(d.argmin())
            color_err.append(float(d[j]))
            shares_err.append(abs(result.fractions[j] - float(true_f)))
            found += int(d[j] <= 20.0)
    n_colors = len(color_err)
    return EvalReport(
        task=TASK,
        model=model.name,
        dataset=dataset or "synthetic-palettes",
        split=split,
        n=len(items),
        metrics={
            "mean_color_error_rgb": round(statistics.fmean(color_err), 3),
            "colors_found_within_20": round(found / n_colors, 4),
            "mean_share_error": round(statistics.fmean(shares_err), 4),
            "true_colors": n_colors,
        },
        seconds=time.perf_counter() - t0,
    )


def bench(model: ModelRef, device: str, precision: str, repeats: int, k: int) -> BenchReport:
    """Time palette extraction on a 640x480 synthetic photo-sized image (median of ``repeats`` runs)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    runner = deepapps.load(TASK, model, device=device, k=k)
    runner(image)  # warm-up
    t0 = time.perf_counter()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        runner(image)
        times.append((time.perf_counter() - t) * 1e3)
    median = statistics.median(times)
    report = BenchReport(
        task=TASK,
        model=model.name,
        figures={},
        seconds=time.perf_counter() - t0,
        setup={
            "image": "640x480 uniform random RGB (worst case: no structure)",
            "k": k,
            "repeats": repeats,
            "thumbnail": THUMBNAIL,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
        },
    )
    report.add("latency_median", round(median, 2), "ms/image", stat="median", n=repeats)
    report.add("throughput", round(1e3 / median, 2), "images/s", derived_from="latency_median")
    return report
