"""``deepapps bench object-detection``: what the wrapper costs, and ONNX vs PyTorch.

Same model, same in-memory images, same process: each round times the Detector and a direct
``ultralytics`` ``predict`` call back to back (alternating which goes first), so machine load
hits both alike. Figures are medians over all images and rounds, in milliseconds per image.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from deepapps.results import BenchReport


def _images(n: int, size: int) -> list[Any]:
    """``n`` fresh scenes (seed 10_000+, never in a training split) as PIL images."""
    import numpy as np
    from PIL import Image

    from deepapps_vision.scenes import SceneRenderer

    with SceneRenderer(size) as renderer:
        return [Image.fromarray(renderer.render(np.random.default_rng([10_000, i])).image) for i in range(n)]


def bench(
    model: Any = None,
    device: str = "cpu",
    *,
    images: int = 8,
    rounds: int = 3,
    sizes: Any = (320, 640),
    onnx: bool = True,
    **options: Any,
) -> BenchReport:
    """Wrapper vs raw ultralytics latency per image size, and ONNX Runtime vs PyTorch."""
    import platform

    import torch

    from .detector import Detector

    t_start = time.perf_counter()
    sizes = [int(s) for s in (sizes if isinstance(sizes, (list, tuple)) else [sizes])]
    det = Detector(model, device, conf=0.25, iou=0.7)
    report = BenchReport(task="object-detection", model=det.model_name, figures={}, seconds=0.0)
    report.setup = {
        "images": f"{images} rendered scenes (seed 10000+) at {max(sizes)} px, held in memory as PIL images",
        "rounds": rounds,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "protocol": "median ms/image; wrapper and raw alternate per image; warm-up excluded",
    }
    pics = _images(images, max(sizes))
    opts = det._options()
    for size in sizes:
        raw_opts = {**opts, "imgsz": size}

        def wrapper(img: Any, size: int = size) -> Any:
            return det.run_one(img, imgsz=size)

        def raw(img: Any, raw_opts: dict = raw_opts) -> Any:
            return det.yolo.predict(img, **raw_opts)

        for img in pics[:2]:  # warm-up both paths
            wrapper(img)
            raw(img)
        w_times: list[float] = []
        r_times: list[float] = []
        for r in range(rounds):
            for img in pics:
                pair = [(wrapper, w_times), (raw, r_times)]
                for fn, bucket in pair if r % 2 == 0 else pair[::-1]:
                    t0 = time.perf_counter()
                    fn(img)
                    bucket.append((time.perf_counter() - t0) * 1e3)
        w, rr = statistics.median(w_times), statistics.median(r_times)
        report.add(f"wrapper_ms_{size}", round(w, 2), "ms/image", n=len(w_times))
        report.add(f"ultralytics_ms_{size}", round(rr, 2), "ms/image", n=len(r_times))
        report.add(f"wrapper_over_raw_{size}", round(w / rr, 3), "ratio", target="<= 1.05")

    if onnx:
        size = min(sizes)
        path = det.export("onnx", imgsz=size)
        ort = Detector(str(path), "cpu", imgsz=size, conf=0.25, iou=0.7)
        for img in pics[:2]:
            ort.run_one(img)
            det.run_one(img, imgsz=size)
        o_times: list[float] = []
        p_times: list[float] = []
        for r in range(rounds):
            for img in pics:
                pair = [
                    (lambda im: ort.run_one(im), o_times),
                    (lambda im: det.run_one(im, imgsz=size), p_times),
                ]
                for fn, bucket in pair if r % 2 == 0 else pair[::-1]:
                    t0 = time.perf_counter()
                    fn(img)
                    bucket.append((time.perf_counter() - t0) * 1e3)
        o, p = statistics.median(o_times), statistics.median(p_times)
        report.add(f"onnxruntime_ms_{size}", round(o, 2), "ms/image", n=len(o_times), file=str(path))
        report.add(f"pytorch_ms_{size}", round(p, 2), "ms/image", n=len(p_times))
        report.add(f"onnx_speedup_{size}", round(p / o, 3), "x (PyTorch ms / ONNX ms)")
    report.seconds = time.perf_counter() - t_start
    return report
