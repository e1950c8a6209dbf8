"""Writing and reading the ``scenes`` dataset in ultralytics YOLO layout.

```
<root>/data.yaml                   path, train/val/test folders, class names
<root>/images/<split>/000123.jpg
<root>/labels/<split>/000123.txt   "class cx cy w h" per object, normalised
<root>/masks/<split>/000123.png    uint8: k = the object on label line k, 0 = none
<root>/meta.json                   how it was generated, counts per split and class
```
Scene ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` and its split is fixed
by its index (``i % 10``: 0-7 train, 8 val, 9 test), so a bigger dataset with the same
seed contains the smaller one and never moves an image between splits.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepapps.errors import InputError

from .render import CLASSES, SceneRenderer

SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1


def split_of(index: int, n: int) -> str:
    """The split of scene ``index`` in a dataset of ``n`` scenes."""
    if n < 10:  # tiny sets still get one val and one test image
        if index == n - 1 and n >= 2:
            return "test"
        if index == n - 2 and n >= 3:
            return "val"
        return "train"
    r = index % 10
    return "train" if r < 8 else ("val" if r == 8 else "test")


def dataset_dir(n: int = 1500, seed: int = 0, size: int = 320) -> Path:
    """Where ``generate`` puts a dataset by default: ``$DEEPAPPS_HOME/datasets/scenes/...``."""
    from deepapps.runtime.home import home

    return home() / "datasets" / "scenes" / f"n{n}-s{seed}-{size}px"


def generate(
    n: int = 1500,
    seed: int = 0,
    size: int = 320,
    out_dir: str | Path | None = None,
    *,
    min_pixels: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    quality: int = 92,
) -> Path:
    """Render ``n`` scenes of ``size``×``size`` pixels; return the path of ``data.yaml``.

    Reuses a finished dataset with the same parameters unless ``overwrite``.
    """
    if n < 1:
        raise InputError(f"scenes: n must be at least 1, got {n}")
    if size < 32:
        raise InputError(f"scenes: size must be at least 32 pixels, got {size}")
    root = Path(out_dir) if out_dir is not None else dataset_dir(n, seed, size)
    params = {"n": n, "seed": seed, "size": size, "min_pixels": min_pixels, "format": FORMAT_VERSION}
    meta_path = root / "meta.json"
    if meta_path.exists() and not overwrite and json.loads(meta_path.read_text()).get("params") == params:
        return root / "data.yaml"
    _fresh_folders(root)
    t0 = time.perf_counter()
    counts, instances = _render_all(root, n, seed, size, min_pixels, quality, progress)
    _write_index(root, n, seed, size, params, counts, instances, time.perf_counter() - t0)
    return root / "data.yaml"


def _fresh_folders(root: Path) -> None:
    """Empty images/, labels/ and masks/ (one sub-folder per split), keeping anything else in ``root``."""
    for sub in ("images", "labels", "masks"):
        shutil.rmtree(root / sub, ignore_errors=True)
        for split in SPLITS:
            (root / sub / split).mkdir(parents=True, exist_ok=True)


def _render_all(root: Path, n: int, seed: int, size: int, min_pixels, quality: int, progress: bool):
    """Render and save every scene; (images per split, instances per split and class)."""
    from PIL import Image

    from deepapps.runtime.progress import progress as bar

    counts = {s: 0 for s in SPLITS}
    instances = {s: [0] * len(CLASSES) for s in SPLITS}
    with SceneRenderer(size, min_pixels=min_pixels) as renderer:
        for i in bar(range(n), total=n, desc=f"rendering scenes ({size}px)", unit="img", disable=not progress):
            scene = renderer.render(np.random.default_rng([seed, i]))
            split = split_of(i, n)
            stem = f"{i:06d}"
            Image.fromarray(scene.image).save(root / "images" / split / f"{stem}.jpg", quality=quality)
            (root / "labels" / split / f"{stem}.txt").write_text("".join(x + "\n" for x in scene.yolo_lines()))
            Image.fromarray(scene.instance_mask).save(root / "masks" / split / f"{stem}.png")
            counts[split] += 1
            for c in scene.classes:
                instances[split][c] += 1
    return counts, instances


def _write_index(root: Path, n: int, seed: int, size: int, params: dict, counts, instances, seconds: float):
    """data.yaml (what ultralytics reads) and meta.json (what a reuse checks), written atomically."""
    from deepapps.runtime.checkpoint import atomic_write_text

    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CLASSES))
    atomic_write_text(
        root / "data.yaml",
        f"# scenes: rendered with deepapps_vision.scenes.generate({n}, seed={seed}, size={size})\n"
        f"path: {root.resolve()}\ntrain: images/train\nval: images/val\ntest: images/test\nnames:\n{names}\n",
    )
    meta = {
        "params": params,
        "classes": list(CLASSES),
        "images": counts,
        "instances": {s: dict(zip(CLASSES, v, strict=False)) for s, v in instances.items()},
        "seconds": round(seconds, 1),
    }
    atomic_write_text(root / "meta.json", json.dumps(meta, indent=2))


def read_labels(label_path: str | Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Classes (N,) and pixel xyxy boxes (N, 4) from a YOLO label file."""
    path = Path(label_path)
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4), dtype=np.float64)
    arr = np.asarray([[float(v) for v in r[:5]] for r in rows], dtype=np.float64)
    cx, cy, w, h = arr[:, 1] * width, arr[:, 2] * height, arr[:, 3] * width, arr[:, 4] * height
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return arr[:, 0].astype(np.int64), boxes


def read_instance_mask(image_path: str | Path) -> np.ndarray:
    """The instance mask that belongs to an image of the dataset (``images`` -> ``masks``, .png)."""
    from PIL import Image

    path = Path(image_path)
    parts = list(path.parts)
    idx = len(parts) - 1 - parts[::-1].index("images")
    parts[idx] = "masks"
    return np.asarray(Image.open(Path(*parts).with_suffix(".png")))


def label_path_for(image_path: str | Path) -> Path:
    path = Path(image_path)
    parts = list(path.parts)
    idx = len(parts) - 1 - parts[::-1].index("images")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def load_split(split: str = "test", data: str | Path | None = None, **options: Any) -> list[dict[str, Any]]:
    """The items of one split: ``[{"image": path, "label": path, "mask": path}, ...]``.

    ``data`` is a data.yaml or dataset folder; without it, the default dataset is
    generated (or reused) with ``generate(**options)``.
    """
    if split not in SPLITS:
        raise InputError(f"scenes: unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if data is None:
        data = generate(**options)
    root = Path(data)
    if root.suffix in {".yaml", ".yml"}:
        root = root.parent
    folder = root / "images" / split
    if not folder.is_dir():
        raise InputError(f"scenes: {folder} does not exist; generate the dataset first")
    items = []
    for img in sorted(folder.glob("*.jpg")):
        items.append(
            {
                "image": img,
                "label": root / "labels" / split / f"{img.stem}.txt",
                "mask": root / "masks" / split / f"{img.stem}.png",
            }
        )
    return items
