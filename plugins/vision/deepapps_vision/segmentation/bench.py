"""``deepapps bench segmentation``: encoder time per image and decoder time per click on a cached embedding."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from deepapps.resolution import ModelRef
from deepapps.results import BenchReport


def _median_ms(fn: Callable[[int], Any], repeats: int) -> float:
    fn(-1)  # warm-up
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1e3)
    return round(statistics.median(times), 3)


def _test_scene(size: int) -> Any:
    from deepapps_vision.scenes import render_scene

    return render_scene(10_001, size)


FIGURES = {  # name -> (unit, what was timed)
    "encoder_ms_per_image": ("ms/image", "set_image on a new image (preprocess + image encoder)"),
    "set_image_cached_ms": ("ms/image", "set_image on the same image again: a cache hit"),
    "decoder_ms_per_click": (
        "ms/click",
        "predict(1 point) on the cached embedding, mask upsampled to the image (and refined, when on)",
    ),
    "decoder_ms_per_click_multimask": ("ms/click", "the same with three candidate masks"),
    "decoder_ms_per_box": ("ms/box", "predict(box) on the cached embedding"),
    "decoder_ms_per_corrective_click": (
        "ms/click",
        "predict(2 points and the previous click's logits as mask_input) on the cached embedding, the "
        "model's click check included (clicks.py: four decoder outputs and their local versions)",
    ),
    "decoder_core_ms_per_click": ("ms/click", "prompt encoder + mask decoder only (low-res logits)"),
    "refine_setup_ms_per_image": (  # only when the refinement is on
        "ms/image",
        "the guided filter's image-only half, computed on the first click of each image",
    ),
    # only when zoom-in is on (the figures above are taken with it off: the decoder on a cached embedding)
    "zoomed_click_ms": (
        "ms/click",
        "predict(1 point, 3 masks) with zoom-in on a new object: whole-image pass, crop encoder, crop pass",
    ),
    "zoomed_box_ms": ("ms/box", "predict(box) with zoom-in on a new object: crop encoder and crop pass"),
}


def _prompt_timings(runner: Any, scene: Any, repeats: int) -> dict[str, Any]:
    from .zoom import Zoom

    zoom = runner.zoom
    runner = runner.with_zoom(Zoom("off"))
    image = scene.image
    h, w = image.shape[:2]

    def fresh(i: int) -> None:  # a one-pixel change: a new hash, so the encoder runs
        copy = image.copy()
        copy[0, 0, 0] = (i + 1) % 256
        runner.set_image(copy)

    timings = {"encoder_ms_per_image": _median_ms(fresh, repeats)}
    runner.set_image(image)
    centre, box = [[w / 2, h / 2]], [w * 0.25, h * 0.25, w * 0.75, h * 0.75]
    timings["set_image_cached_ms"] = _median_ms(lambda i: runner.set_image(image), repeats)
    timings["decoder_ms_per_click"] = _median_ms(
        lambda i: runner.predict(points=centre, multimask=False), repeats
    )
    timings["decoder_ms_per_click_multimask"] = _median_ms(
        lambda i: runner.predict(points=centre, multimask=True), repeats
    )
    timings["decoder_ms_per_box"] = _median_ms(lambda i: runner.predict(box=box), repeats)
    timings["decoder_ms_per_corrective_click"] = _median_ms(_corrective(runner, w, h), repeats)
    timings["decoder_core_ms_per_click"] = _median_ms(lambda i: _decoder_only(runner, w / 2, h / 2), repeats)
    if runner.refinement.active:  # the refinement's per-image half, built on the first click of an image
        from .refine import Guide

        timings["refine_setup_ms_per_image"] = _median_ms(
            lambda i: Guide(image, runner.refinement, runner.arch.low_res), repeats
        )
    if zoom.active:
        zoomed, crops = _zoom_timings(runner.with_zoom(zoom), scene, repeats)
        timings.update(zoomed)
        timings["crops"] = crops
    return timings


def _corrective(runner: Any, w: int, h: int) -> Callable[[int], Any]:
    """A corrective click after a first one, each run fed the logits of the run before (an interactive
    session: the runner knows the previous mask, so the click check's local versions are timed too)."""
    _, _, logits = runner.predict(points=[[w / 2, h / 2]], multimask=True)
    state = {"logits": logits[0]}

    def click(i: int) -> None:
        points = [[w / 2, h / 2], [w / 2 + w / 8, h / 2]]
        _, _, out = runner.predict(points=points, labels=[1, i % 2], mask_input=state["logits"])
        state["logits"] = out[0]

    return click


def _zoom_timings(runner: Any, scene: Any, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Zoom-in on the render's first object, seen for the first time: every crop's embedding is dropped
    before each run, so the crop's encoder is timed too (the whole image's stays cached)."""
    from .prompts import inner_point

    runner.set_image(scene.image)
    whole = runner.predictor.last_key
    click = [list(inner_point(scene.instance_mask == 1))]
    box = [float(v) for v in scene.boxes[0]]

    def uncached(fn):
        def run(i: int) -> None:
            for key in [k for k in runner.cache.items if k != whole]:
                del runner.cache.items[key]
            fn()

        return run

    timings, crops = {}, {}
    for name, fn in (
        ("zoomed_click_ms", lambda: runner.predict(points=click, multimask=True)),
        ("zoomed_box_ms", lambda: runner.predict(box=box)),
    ):
        calls = runner.encoder_calls
        timings[name] = _median_ms(uncached(fn), repeats)
        crops[name] = (runner.encoder_calls - calls) / (repeats + 1)  # 1.0: every run encoded a crop
    return timings, crops


def bench(
    model: ModelRef,
    device: str,
    precision: str,
    repeats: int,
    image_size: int,
    everything: bool,
    points_per_side: int | None,
    pred_iou_thresh: float | None,
    stability_thresh: float | None,
    iou: float | None,
    remask: bool | None,
    refine: str | None,
    refine_radius: float | None,
    refine_eps: float | None,
    zoom: str | None,
    zoom_max: float | None,
    zoom_context: float | None,
    refine_holes: float | None,
    refine_threshold: float | None,
    max_points: int | None,
    click_check: str | None,
) -> BenchReport:
    """Median milliseconds of: the image encoder, a cache hit, one click, one box, and segment-everything."""
    import torch

    import deepapps
    from deepapps.runtime.threads import set_threads

    from .specs import everything_settings, mask_settings

    masking, grid = mask_settings(locals()), everything_settings(locals())

    set_threads()  # DEEPAPPS_THREADS, else every core
    t0 = time.perf_counter()
    runner = deepapps.load("segmentation", model, device=device, precision=precision, cache_size=4, **masking)
    scene = _test_scene(image_size)
    image = scene.image
    timings = _prompt_timings(runner, scene, repeats)
    arch = runner.arch
    setup = {
        "image": f"scenes render seed 10001, {image.shape[1]}x{image.shape[0]}",
        "encoder_input": arch.img_size,
        "embedding": f"{arch.prompt_dim}x{arch.grid}x{arch.grid}",
        "repeats": repeats,
        "device": device,
        "precision": precision,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "params": sum(p.numel() for p in runner.sam.parameters()),
        "refinement": runner.refinement.to_dict(),
        "zoom": runner.zoom.to_dict(),
        "max_points": runner.max_points,
        "click_check": runner.click_check,
    }
    report = BenchReport(task="segmentation", model=model.name, figures={}, seconds=0.0, setup=setup)
    for name, (unit, note) in FIGURES.items():
        if name in timings:
            extra = {"crops_per_run": timings["crops"][name]} if name in timings.get("crops", {}) else {}
            report.add(name, timings[name], unit, stat="median", note=note, **extra)
    if everything:
        start = time.perf_counter()
        found = runner.segment_everything(image, **grid)
        elapsed = round((time.perf_counter() - start) * 1e3, 1)
        report.add(
            "segment_everything_ms", elapsed, "ms/image", masks=len(found.instances), **(found.filters or {})
        )
    report.seconds = time.perf_counter() - t0
    return report


def _decoder_only(runner: Any, x: float, y: float) -> None:
    import torch

    predictor = runner.predictor
    coords = torch.as_tensor(
        predictor.transform.apply_coords(np.array([[x, y]]), predictor.original_size),
        dtype=torch.float,
        device=predictor.device,
    )[None]
    labels = torch.ones((1, 1), dtype=torch.int, device=predictor.device)
    sam = runner.sam
    with torch.inference_mode():
        sparse, dense = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        sam.mask_decoder(
            image_embeddings=predictor.features,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
