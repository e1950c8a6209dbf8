"""The scene renderer: pybullet in DIRECT mode (no window, no GPU), TinyRenderer images.

One call of :meth:`SceneRenderer.render` builds a fresh physics world, drops the class
objects and distractors, lets them settle, and takes one picture. Labels come from the
segmentation buffer, so every box is the exact extent of the visible pixels of its object
(occluded and cut-off parts excluded) and every mask is exact.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# class name -> (urdf inside pybullet_data, global scale range, recolour?)
OBJECTS: dict[str, tuple[str, tuple[float, float], bool]] = {
    "duck": ("duck_vhacd.urdf", (0.9, 1.4), False),
    "teddy": ("teddy_vhacd.urdf", (0.9, 1.4), False),
    "lego": ("lego/lego.urdf", (2.2, 3.2), True),
    "soccer_ball": ("soccerball.urdf", (0.07, 0.11), False),
    "mug": ("objects/mug.urdf", (0.8, 1.2), True),
    "block": ("jenga/jenga.urdf", (0.7, 1.0), True),
}
CLASSES: tuple[str, ...] = tuple(OBJECTS)

# distractors: objects of no class (simple shapes and pybullet's random meshes). concave_box's
# collision file is missing from pybullet_data, so it never loads and is skipped; it stays in the
# list so that seeded datasets remain identical.
_SHAPE_DISTRACTORS = ("cube_small.urdf", "sphere_small.urdf", "block.urdf", "toys/concave_box.urdf")
_N_RANDOM_URDFS = 1000

_PHOTO_FILES = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
    "camera.png",
    "moon.png",
    "retina.jpg",
    "horse.png",
)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence pybullet's C-level prints (build time, mesh warnings) so stdout stays clean for --json."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout (pytest capture, notebooks)
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def pybullet_data_path() -> str:
    import pybullet_data

    return pybullet_data.getDataPath()


def load_photos() -> list[np.ndarray]:
    """Real photos used as backgrounds and surface textures (scikit-image + scikit-learn samples)."""
    from PIL import Image

    photos: list[np.ndarray] = []
    try:
        import skimage.data

        folder = Path(skimage.data.__file__).parent
        for name in _PHOTO_FILES:
            path = folder / name
            if path.exists():
                photos.append(np.asarray(Image.open(path).convert("RGB")))
    except ImportError:  # pragma: no cover - scikit-image is a vision dependency
        pass
    try:
        from sklearn.datasets import load_sample_images

        photos.extend(np.asarray(img, dtype=np.uint8) for img in load_sample_images().images)
    except ImportError:  # pragma: no cover
        pass
    if not photos:
        raise RuntimeError("no background photos found: install scikit-image or scikit-learn")
    return photos


@dataclass
class Scene:
    """One rendered picture with its exact labels.

    ``instance_mask`` is HxW uint8: 0 = background or distractor, k = the k-th labelled
    object (its row ``k-1`` in ``classes``/``boxes``). Boxes are pixel xyxy, x1/y1 exclusive.
    """

    image: np.ndarray
    instance_mask: np.ndarray
    classes: list[int] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def yolo_lines(self) -> list[str]:
        """Label lines ``class cx cy w h`` (normalised), one per labelled instance."""
        h, w = self.instance_mask.shape
        lines = []
        for c, (x0, y0, x1, y1) in zip(self.classes, self.boxes, strict=False):
            cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
            lines.append(f"{c} {cx:.6f} {cy:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
        return lines


def boxes_from_mask(instance_mask: np.ndarray, n: int) -> list[tuple[int, int, int, int]]:
    """Tight pixel boxes (x0, y0, x1, y1), x1/y1 exclusive, for instance ids 1..n."""
    boxes = []
    for k in range(1, n + 1):
        ys, xs = np.nonzero(instance_mask == k)
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return boxes


class SceneRenderer:
    """Renders random scenes; keeps one pybullet DIRECT connection and the photo set."""

    def __init__(self, size: int | tuple[int, int] = 320, min_pixels: int | None = None) -> None:
        with quiet_stdout():
            import pybullet as p

        self.width, self.height = (size, size) if isinstance(size, int) else size
        self.min_pixels = (
            min_pixels if min_pixels is not None else max(16, int(0.0005 * self.width * self.height))
        )
        self.photos = load_photos()
        with quiet_stdout():
            self.client = p.connect(p.DIRECT)
        self._tmp = tempfile.TemporaryDirectory(prefix="deepapps-scenes-")
        self._texture_files: list[str] = []
        for i, photo in enumerate(self.photos):
            path = os.path.join(self._tmp.name, f"tex{i}.png")
            from PIL import Image

            Image.fromarray(photo).resize((256, 256)).save(path)
            self._texture_files.append(path)

    def close(self) -> None:
        import pybullet as p

        if self.client is not None:
            try:
                p.disconnect(self.client)
            except Exception:  # already gone
                pass
            self.client = None
        self._tmp.cleanup()

    def __enter__(self) -> SceneRenderer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # building blocks -----------------------------------------------------------------
    def _quad(self, rng: np.random.Generator, half: float, z: float, texture: bool) -> int:
        """A square floor: collision plane plus (optionally) a photo-textured visual quad."""
        import pybullet as p

        cid = self.client
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[half, half, 0.005], physicsClientId=cid)
        vis = -1
        if texture:
            verts = [
                [-half, -half, 0.0051],
                [half, -half, 0.0051],
                [half, half, 0.0051],
                [-half, half, 0.0051],
            ]
            uvs = [[0, 0], [1, 0], [1, 1], [0, 1]]
            vis = p.createVisualShape(
                p.GEOM_MESH,
                vertices=verts,
                indices=[0, 1, 2, 0, 2, 3],
                uvs=uvs,
                normals=[[0, 0, 1]] * 4,
                physicsClientId=cid,
            )
        body = p.createMultiBody(0, col, vis, basePosition=[0, 0, z - 0.005], physicsClientId=cid)
        if texture:
            tex = p.loadTexture(
                self._texture_files[rng.integers(len(self._texture_files))], physicsClientId=cid
            )
            tint = rng.uniform(0.6, 1.0, 3).tolist() + [1.0]
            p.changeVisualShape(body, -1, textureUniqueId=tex, rgbaColor=tint, physicsClientId=cid)
        return body

    def _surface(self, rng: np.random.Generator) -> tuple[float, float, str, int | None]:
        """Build the support; returns (surface height, usable half-extent, kind, see-through body)."""
        import pybullet as p

        cid = self.client
        kind = rng.choice(["floor", "photo-floor", "table", "tray"], p=[0.3, 0.25, 0.25, 0.2])
        if kind == "photo-floor":  # invisible floor: the background photo shows through
            body = self._quad(rng, 3.0, 0.0, texture=False)
            return 0.0, 0.22, str(kind), body
        self._quad(rng, float(rng.uniform(1.0, 2.5)), 0.0, texture=True)
        if kind == "table":
            body = p.loadURDF(
                "table/table.urdf",
                [0, 0, 0],
                p.getQuaternionFromEuler([0, 0, rng.uniform(-0.3, 0.3)]),
                useFixedBase=True,
                physicsClientId=cid,
            )
            if rng.random() < 0.6:
                tex = p.loadTexture(
                    self._texture_files[rng.integers(len(self._texture_files))], physicsClientId=cid
                )
                p.changeVisualShape(body, -1, textureUniqueId=tex, physicsClientId=cid)
            return 0.626, 0.25, str(kind), None
        if kind == "tray":
            p.loadURDF(
                "tray/traybox.urdf",
                [0, 0, 0],
                p.getQuaternionFromEuler([0, 0, rng.uniform(0, math.pi)]),
                useFixedBase=True,
                physicsClientId=cid,
            )
            return 0.0, 0.2, str(kind), None
        return 0.0, 0.25, str(kind), None

    def _drop(self, rng: np.random.Generator, urdf: str, scale: float, z0: float, spread: float) -> int:
        import pybullet as p

        pos = [rng.uniform(-spread, spread), rng.uniform(-spread, spread), z0 + rng.uniform(0.04, 0.2)]
        orn = p.getQuaternionFromEuler(rng.uniform(-math.pi, math.pi, 3).tolist())
        return p.loadURDF(urdf, pos, orn, globalScaling=scale, physicsClientId=self.client)

    # one scene -----------------------------------------------------------------------
    def render(self, rng: np.random.Generator) -> Scene:
        """One random scene drawn from ``rng`` (same generator state, same scene)."""
        with quiet_stdout():
            return self._render(rng)

    def _render(self, rng: np.random.Generator) -> Scene:
        """Objects, distractors, settling, camera, background, jitter, labels: in this order, so the
        same generator state always gives the same scene."""
        import pybullet as p

        cid = self.client
        p.resetSimulation(physicsClientId=cid)
        p.setAdditionalSearchPath(pybullet_data_path(), physicsClientId=cid)
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        z0, spread, surface, see_through = self._surface(rng)
        n_objects = int(rng.integers(1, 7))
        body_class = self._place_objects(rng, n_objects, z0, spread)
        n_distractors = int(rng.integers(0, 5))
        self._place_distractors(rng, n_distractors, z0, spread)
        for _ in range(int(rng.integers(150, 300))):  # let them fall and settle
            p.stepSimulation(physicsClientId=cid)
        rgb, seg, fov = self._photograph(rng, body_class, z0)
        rgb = self._composite(rng, rgb, seg, see_through)
        instance, classes = self._labels(seg, body_class)
        boxes = boxes_from_mask(instance, len(classes))
        info = {"surface": surface, "fov": round(fov, 2), "objects": n_objects, "distractors": n_distractors}
        return Scene(image=rgb, instance_mask=instance, classes=classes, boxes=boxes, info=info)

    def _place_objects(self, rng: np.random.Generator, n: int, z0: float, spread: float) -> dict[int, int]:
        """Drop ``n`` labelled objects; body id -> class index."""
        import pybullet as p

        body_class: dict[int, int] = {}
        for _ in range(n):
            cls = int(rng.integers(len(CLASSES)))
            urdf, (lo, hi), recolour = OBJECTS[CLASSES[cls]]
            body = self._drop(rng, urdf, float(rng.uniform(lo, hi)), z0, spread)
            if recolour:
                p.changeVisualShape(
                    body, -1, rgbaColor=rng.uniform(0.05, 1.0, 3).tolist() + [1], physicsClientId=self.client
                )
            body_class[body] = cls
        return body_class

    def _place_distractors(self, rng: np.random.Generator, n: int, z0: float, spread: float) -> None:
        """Drop ``n`` unlabelled objects (random meshes or plain shapes) in random colours."""
        import pybullet as p

        for _ in range(n):
            if rng.random() < 0.6:
                k = int(rng.integers(_N_RANDOM_URDFS))
                urdf, scale = f"random_urdfs/{k:03d}/{k:03d}.urdf", float(rng.uniform(0.6, 1.4))
            else:
                urdf = _SHAPE_DISTRACTORS[rng.integers(len(_SHAPE_DISTRACTORS))]
                scale = float(rng.uniform(0.6, 1.3))
            try:
                body = self._drop(rng, urdf, scale, z0, spread)
            except p.error:
                continue
            p.changeVisualShape(
                body, -1, rgbaColor=rng.uniform(0.05, 1.0, 3).tolist() + [1], physicsClientId=self.client
            )

    def _photograph(self, rng: np.random.Generator, body_class: dict[int, int], z0: float):
        """(rgb, segmentation, fov) from a random camera aimed at the objects that stayed near the surface."""
        import pybullet as p

        cid = self.client
        positions = [p.getBasePositionAndOrientation(b, physicsClientId=cid)[0] for b in body_class]
        centre = np.mean(positions, axis=0) if positions else np.array([0.0, 0.0, z0])
        target = centre + np.array([rng.normal(0, 0.04), rng.normal(0, 0.04), 0.0])
        fov = float(rng.uniform(35, 65))
        distance = float(rng.uniform(0.35, 0.85)) * (50.0 / fov)
        view = p.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=target.tolist(),
            distance=distance,
            yaw=float(rng.uniform(0, 360)),
            pitch=float(rng.uniform(-85, -20)),
            roll=float(rng.normal(0, 4)),
            upAxisIndex=2,
            physicsClientId=cid,
        )
        proj = p.computeProjectionMatrixFOV(fov, self.width / self.height, 0.02, 10.0, physicsClientId=cid)
        light_dir = [rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.3, 1.5)]
        _, _, rgba, _, seg = p.getCameraImage(
            self.width,
            self.height,
            view,
            proj,
            lightDirection=light_dir,
            lightColor=rng.uniform(0.75, 1.0, 3).tolist(),
            lightDistance=2.0,
            shadow=int(rng.random() < 0.6),
            lightAmbientCoeff=float(rng.uniform(0.3, 0.7)),
            lightDiffuseCoeff=float(rng.uniform(0.3, 0.8)),
            lightSpecularCoeff=float(rng.uniform(0.0, 0.4)),
            renderer=p.ER_TINY_RENDERER,
            physicsClientId=cid,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(self.height, self.width, 4)[:, :, :3].copy()
        return rgb, np.asarray(seg, dtype=np.int64).reshape(self.height, self.width), fov

    def _composite(self, rng: np.random.Generator, rgb: np.ndarray, seg: np.ndarray, see_through) -> np.ndarray:
        """A real photo behind everything the renderer left empty, then global photometric jitter."""
        empty = (seg < 0) | (seg == see_through) if see_through is not None else seg < 0
        if empty.any():
            rgb[empty] = self._background(rng)[empty]
        img = rgb.astype(np.float32) * rng.uniform(0.75, 1.2) + rng.uniform(-20, 20)
        if rng.random() < 0.5:
            img += rng.normal(0, rng.uniform(1, 6), img.shape)
        return np.clip(img, 0, 255).astype(np.uint8)

    def _labels(self, seg: np.ndarray, body_class: dict[int, int]) -> tuple[np.ndarray, list[int]]:
        """Instance mask (1..K) and classes of the labelled objects with enough visible pixels."""
        instance = np.zeros((self.height, self.width), dtype=np.uint8)
        classes: list[int] = []
        for body, cls in body_class.items():
            pixels = seg == body
            if int(pixels.sum()) < self.min_pixels:
                continue  # out of view or hidden behind something
            classes.append(cls)
            instance[pixels] = len(classes)
        return instance, classes

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        """A random crop of a random photo, flipped maybe, resized to the frame."""
        from PIL import Image

        photo = self.photos[rng.integers(len(self.photos))]
        ph, pw = photo.shape[:2]
        frac = rng.uniform(0.4, 1.0)
        ch, cw = max(8, int(ph * frac)), max(8, int(pw * frac))
        y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
        crop = photo[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((self.width, self.height)))


def render_scene(seed: int = 0, size: int = 320) -> Scene:
    """Render one scene (convenience for demos and the UI)."""
    with SceneRenderer(size) as renderer:
        return renderer.render(np.random.default_rng(seed))
