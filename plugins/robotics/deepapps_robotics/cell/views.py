"""Labelled cell camera views, for fine-tuning the detector on what the cell's camera sees.

Parts of random classes, sizes, colours and poses are dropped onto the belt inside the pick
window, the overhead camera takes a frame, and exact boxes come from pybullet's segmentation
buffer (training labels only: the cell itself never reads it). Written in YOLO format with a
``data.yaml`` the object-detection task trains from.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import layout as L
from .world import CellWorld, quiet_stdout

MIN_PIXELS = 40


def render_view(
    world: CellWorld, rng: np.random.Generator, classes: tuple[str, ...], arm=None
) -> tuple[np.ndarray, list]:
    """One frame with 1-3 parts in the window, the arm where the cell's camera may see it (at the
    ready pose or over a bin): (RGB, [(class id, x0, y0, x1, y1)])."""
    p, cid = world.p, world.cid
    if arm is not None:
        poses = [L.HOME] + [(b.x, b.y, L.BIN_RELEASE_HEIGHT) for b in world.bins.values()]
        pose = poses[int(rng.integers(len(poses)))]
        q = arm.ik(pose, float(rng.uniform(-1.5, 1.5)))
        for j, v in enumerate(q):
            p.resetJointState(world.robot, j, float(v), physicsClientId=cid)
        arm.q = q
        arm._hold_arm(q)
    for body in list(world.parts):
        world.remove(body)
    bodies = {}
    for k in range(int(rng.integers(1, 4))):
        cls = classes[int(rng.integers(len(classes)))]
        body = world.feed(cls, f"view{k}")
        x = L.BELT_X + rng.uniform(-0.07, 0.07)
        y = rng.uniform(-0.13, 0.13)
        orn = p.getQuaternionFromEuler([0, 0, rng.uniform(-math.pi, math.pi)])
        p.resetBasePositionAndOrientation(
            body, [x, y, L.BELT_TOP + 0.05 + 0.04 * k], orn, physicsClientId=cid
        )
        bodies[body] = classes.index(cls)
    world.belt_on = False
    world.step(int(rng.integers(60, 120)))
    size = L.CAMERA_SIZE
    light = [rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.6, 1.5)]
    _, _, rgba, _, seg = p.getCameraImage(
        size,
        size,
        world.view,
        world.proj,
        renderer=p.ER_TINY_RENDERER,
        lightDirection=light,
        shadow=int(rng.random() < 0.3),
        physicsClientId=cid,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[:, :, :3].astype(np.float32)
    rgb = np.clip(rgb * rng.uniform(0.85, 1.15) + rng.uniform(-12, 12), 0, 255).astype(np.uint8)
    seg = np.asarray(seg, dtype=np.int64).reshape(size, size)
    labels = []
    for body, cid_ in bodies.items():
        ys, xs = np.nonzero(seg == body)
        if len(xs) >= MIN_PIXELS:
            labels.append((cid_, int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return rgb, labels


def generate(
    out: Path, n: int, seed: int, classes: tuple[str, ...], val_share: float = 0.15, only: str | None = None
) -> Path:
    """Write ``n`` labelled views under ``out`` (images/, labels/ per split) and return ``data.yaml``.
    ``only="test"`` puts every view in one split (a held-out set; the yaml points every split at it)."""
    from PIL import Image

    out = Path(out)
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(n * val_share)))
    from .robot import PandaArm

    world = CellWorld(classes, seed=seed)
    arm = PandaArm(world)
    try:
        for i in range(n):
            split = only or ("val" if i < n_val else "train")
            (out / "images" / split).mkdir(parents=True, exist_ok=True)
            (out / "labels" / split).mkdir(parents=True, exist_ok=True)
            with quiet_stdout():
                rgb, labels = render_view(world, rng, classes, arm)
            Image.fromarray(rgb).save(out / "images" / split / f"cell{i:05d}.png")
            size = float(L.CAMERA_SIZE)
            lines = [
                f"{c} {(x0 + x1) / 2 / size:.6f} {(y0 + y1) / 2 / size:.6f} {(x1 - x0) / size:.6f} "
                f"{(y1 - y0) / size:.6f}"
                for c, x0, y0, x1, y1 in labels
            ]
            (out / "labels" / split / f"cell{i:05d}.txt").write_text(
                "\n".join(lines) + ("\n" if lines else "")
            )
    finally:
        world.close()
    yaml = out / "data.yaml"
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(classes))
    splits = (
        {"train": f"images/{only}", "val": f"images/{only}", "test": f"images/{only}"}
        if only
        else {"train": "images/train", "val": "images/val"}
    )
    lines = "".join(f"{k}: {v}\n" for k, v in splits.items())
    yaml.write_text(f"path: {out.resolve()}\n{lines}names:\n{names}\n")
    return yaml
