"""``deepapps bench object-detection``: what the wrapper costs, ONNX vs PyTorch, and cold start.

Same model, same in-memory images, same process: each round times the Detector and a direct
``ultralytics`` ``predict`` call back to back (alternating which goes first), so machine load
hits both alike. Figures are medians over all images and rounds, in milliseconds per image.
Cold start compares ``deepapps run object-detection IMAGE`` with ``yolo predict`` as fresh
processes (:mod:`.coldstart`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from deepapps.resolution import ModelRef
from deepapps.results import BenchReport

from .specs import BENCH_OPTIONS, TASK

_DEFAULTS = {o.name: o.default for o in BENCH_OPTIONS}


def _images(n: int, size: int) -> list[Any]:
    """``n`` fresh scenes (seed 10_000+, never in a training split) as PIL images."""
    import numpy as np
    from PIL import Image

    from deepapps_vision.scenes import SceneRenderer

    with SceneRenderer(size) as renderer:
        return [Image.fromarray(renderer.render(np.random.default_rng([10_000, i])).image) for i in range(n)]


def alternate(paths: list[Callable[[Any], Any]], pics: list[Any], rounds: int) -> list[float]:
    """Median ms per image of each path; the order of the paths flips every round (after a warm-up)."""
    for img in pics[:2]:
        for fn in paths:
            fn(img)
    times: list[list[float]] = [[] for _ in paths]
    order = list(range(len(paths)))
    for r in range(rounds):
        for img in pics:
            for k in order if r % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                paths[k](img)
                times[k].append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(t) for t in times]


def bench(
    model: ModelRef | str | None,
    device: str = "cpu",
    precision: str = "fp32",
    *,
    images: int = _DEFAULTS["images"],
    rounds: int = _DEFAULTS["rounds"],
    sizes: Any = _DEFAULTS["sizes"],
    onnx: bool = _DEFAULTS["onnx"],
    cold_runs: int = _DEFAULTS["cold_runs"],
    trust_weights: bool = _DEFAULTS["trust_weights"],
) -> BenchReport:
    """Wrapper vs raw ultralytics latency per image size, ONNX Runtime vs PyTorch, cold start vs ``yolo``."""
    import deepapps

    t_start = time.perf_counter()
    sizes = [int(s) for s in sizes]
    det = deepapps.load(TASK, model, device=device, precision=precision, trust_weights=trust_weights)
    report = BenchReport(
        task=TASK, model=det.model_name, figures={}, seconds=0.0, setup=_setup(images, sizes, rounds, device)
    )
    pics = _images(images, max(sizes))
    for size in sizes:
        _wrapper_vs_raw(det, pics, size, rounds, report)
    if onnx:
        _onnx_vs_pytorch(det, pics, min(sizes), rounds, report)
    if cold_runs:
        _cold_start(det, cold_runs, trust_weights, report)
    report.seconds = time.perf_counter() - t_start
    return report


def _setup(images: int, sizes: list[int], rounds: int, device: str) -> dict[str, Any]:
    import platform

    import torch

    return {
        "images": f"{images} rendered scenes (seed 10000+) at {max(sizes)} px, held in memory as PIL images",
        "rounds": rounds,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "protocol": "median ms/image; the timed paths alternate per image; warm-up excluded",
    }


def _wrapper_vs_raw(det: Any, pics: list[Any], size: int, rounds: int, report: BenchReport) -> None:
    from . import ultra

    opts = det.predict_options(conf=0.25, iou=0.7, classes=None, imgsz=size, max_det=300)
    predictor = ultra.predictor_class()
    wrapped = det.with_defaults(conf=0.25, iou=0.7, imgsz=size)
    w, raw = alternate(
        [wrapped, lambda img: det.yolo.predict(img, predictor=predictor, **opts)], pics, rounds
    )
    n = len(pics) * rounds
    report.add(f"wrapper_ms_{size}", round(w, 2), "ms/image", n=n)
    report.add(f"ultralytics_ms_{size}", round(raw, 2), "ms/image", n=n)
    report.add(f"wrapper_over_raw_{size}", round(w / raw, 3), "ratio", target="<= 1.05")


def _onnx_vs_pytorch(det: Any, pics: list[Any], size: int, rounds: int, report: BenchReport) -> None:
    import deepapps

    path = det.export("onnx", imgsz=size)
    ort = deepapps.load(TASK, str(path), device="cpu", conf=0.25, iou=0.7, imgsz=size)
    torch_path = det.with_defaults(conf=0.25, iou=0.7, imgsz=size)
    o, p = alternate([ort, torch_path], pics, rounds)
    n = len(pics) * rounds
    report.add(f"onnxruntime_ms_{size}", round(o, 2), "ms/image", n=n, file=str(path))
    report.add(f"pytorch_ms_{size}", round(p, 2), "ms/image", n=n)
    report.add(f"onnx_speedup_{size}", round(p / o, 3), "x (PyTorch ms / ONNX ms)")


def _cold_start(det: Any, runs: int, trust_weights: bool, report: BenchReport) -> None:
    """``deepapps run object-detection IMAGE`` vs ``yolo predict`` as fresh processes (see .coldstart)."""
    from deepapps.registry import registry

    from .coldstart import measure

    default = registry.task(TASK).default_model
    model = None if det.model_name == default else det.model_name
    cold = measure(runs, model=model, trust_weights=trust_weights)
    note = {"runs": cold["runs"], "commands": cold["commands"]}
    report.add("cold_start_deepapps_s", cold["deepapps_wall_s"], "s wall (median)", **note)
    report.add("cold_start_yolo_s", cold["yolo_wall_s"], "s wall (median)")
    report.add(
        "cold_start_ratio",
        cold["wall_ratio"],
        "ratio (deepapps / yolo, wall)",
        target=f"<= {cold['target_ratio']}",
    )
    report.add(
        "cold_start_cpu_ratio",
        cold["cpu_ratio"],
        "ratio (deepapps / yolo, CPU s)",
        deepapps_cpu_s=cold["deepapps_cpu_s"],
        yolo_cpu_s=cold["yolo_cpu_s"],
    )
