"""Cold start of ``deepapps run object-detection IMAGE`` next to ultralytics' own ``yolo predict``.

Both run as fresh processes on the same image with the same network: deepapps loads the bundled
``.safetensors`` model; ``yolo`` gets the same weights written once as an ultralytics ``.pt`` file
(this module writes it, so unpickling it is safe). The two commands alternate (which one goes
first flips every round, after one untimed round that warms the file cache), so load on a
shared machine hits both alike. Reported: the median wall time and the median CPU time (user +
system, all threads) of each, and their ratios. CPU time is the steadier figure on a busy machine.

    python -m deepapps_vision.detection.coldstart --runs 5      # prints one JSON object
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.2


def sample_image() -> Path:
    """``bus.jpg``, which ships inside the ultralytics wheel."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("ultralytics is not installed")
    return Path(spec.origin).parent / "assets" / "bus.jpg"


def executable(name: str) -> str:
    """A console script of this Python (not a version-manager shim, which adds its own start-up time)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed next to {sys.executable}")
    return found


def write_ultralytics_checkpoint(yolo: Any, path: Path, imgsz: int) -> Path:
    """The network of ``yolo`` as an ultralytics ``.pt`` file (what ``yolo predict`` loads)."""
    import copy
    import datetime

    import torch
    import ultralytics

    net = copy.deepcopy(yolo.model).half()
    checkpoint = {
        "model": net,
        "train_args": {"imgsz": imgsz, "task": "detect"},
        "date": datetime.datetime.now().isoformat(),
        "version": ultralytics.__version__,
    }
    torch.save(checkpoint, path)
    return path


def time_command(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run; a failed run raises with its output."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = output.decode(errors="replace")[-800:]
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {proc.returncode}: {tail}")
    return wall, usage.ru_utime + usage.ru_stime


def commands(
    image: Path, checkpoint: Path, model: str | None, trust_weights: bool = False
) -> dict[str, list[str]]:
    ours = [executable("deepapps"), "run", "object-detection", str(image), "--device", "cpu"]
    if model:
        ours += ["--model", model]
    if trust_weights:
        ours += ["--trust-weights"]
    theirs = [
        executable("yolo"),
        "predict",
        f"model={checkpoint}",
        f"source={image}",
        "device=cpu",
        "save=False",
    ]
    return {"deepapps": ours, "yolo": theirs}


def measure(
    runs: int = 5, image: Path | None = None, model: str | None = None, trust_weights: bool = False
) -> dict[str, Any]:
    """Time both commands ``runs`` times each, alternating; medians, ratios and the exact commands."""
    import deepapps
    from deepapps.runtime.offline import apply_offline_policy

    apply_offline_policy()  # the children inherit it: neither probes the network
    image = image or sample_image()
    runner = deepapps.load("object-detection", model, device="cpu", trust_weights=trust_weights)
    with tempfile.TemporaryDirectory(prefix="deepapps-coldstart-") as tmp:
        folder = Path(tmp)
        checkpoint = write_ultralytics_checkpoint(runner.yolo, folder / "same-weights.pt", runner.imgsz)
        cmds = commands(image, checkpoint, model, trust_weights)
        env = dict(os.environ)
        times: dict[str, list[tuple[float, float]]] = {"deepapps": [], "yolo": []}
        for name in ("deepapps", "yolo"):  # untimed: fills the file cache for both
            time_command(cmds[name], env, folder)
        for i in range(runs):
            for name in ("deepapps", "yolo") if i % 2 == 0 else ("yolo", "deepapps"):
                times[name].append(time_command(cmds[name], env, folder))
    return summarise(times, cmds, image)


def summarise(times: dict[str, list[tuple[float, float]]], cmds: dict[str, list[str]], image: Path) -> dict:
    med = {
        name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
        for name, t in times.items()
    }
    return {
        "image": str(image),
        "runs": len(times["deepapps"]),
        "deepapps_wall_s": round(med["deepapps"][0], 2),
        "yolo_wall_s": round(med["yolo"][0], 2),
        "wall_ratio": round(med["deepapps"][0] / med["yolo"][0], 3),
        "deepapps_cpu_s": round(med["deepapps"][1], 2),
        "yolo_cpu_s": round(med["yolo"][1], 2),
        "cpu_ratio": round(med["deepapps"][1] / med["yolo"][1], 3),
        "target_ratio": TARGET_RATIO,
        "walls_s": {k: [round(w, 2) for w, _ in v] for k, v in times.items()},
        "cpus_s": {k: [round(c, 2) for _, c in v] for k, v in times.items()},
        "commands": {k: " ".join(v) for k, v in cmds.items()},
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command (default 5)")
    parser.add_argument(
        "--image", type=Path, default=None, help="image to detect in (default: ultralytics' bus.jpg)"
    )
    parser.add_argument("--model", default=None, help="deepapps model (default: the bundled one)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print(json.dumps(measure(args.runs, args.image, args.model), indent=2))


if __name__ == "__main__":
    main()
