"""The simulated cell hardware: pybullet (DIRECT, headless) with a Panda, a belt, bins and a camera.

This module is the *plant*: it moves parts along the belt, feeds new ones, renders the camera and
knows the truth about every part. The controller (``controller.py``) talks to it only through
hardware-like calls (belt on/off, camera frame, arm joints, gripper, the end-of-belt photo-eye);
:meth:`CellWorld.truth` exists for scoring and is never used to decide a pick.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from . import layout as L

TIME_STEP = 1.0 / 240.0
SOLVER_ITERATIONS = 60
PART_FRICTION = 1.0
FINGER_FRICTION = 2.0

# cell parts: the `scenes` classes at sizes the Panda's 8 cm gripper can hold
# class -> (global scale range, mass kg, recolour like the scenes renders)
PART_SIZES: dict[str, tuple[tuple[float, float], float, bool]] = {
    "duck": ((0.62, 0.72), 0.08, False),
    "teddy": ((0.62, 0.72), 0.08, False),
    "lego": ((1.6, 1.9), 0.05, True),
    "soccer_ball": ((0.055, 0.062), 0.06, False),
    "mug": ((0.6, 0.68), 0.12, True),
    "block": ((0.9, 1.0), 0.05, True),
}


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence pybullet's C-level prints so stdout stays clean for --json."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    saved, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


@dataclass
class Part:
    """A physical part (truth, for scoring): its body, class and the item it was fed for."""

    body: int
    cls: str
    item: str
    fed_at: float
    passes: int = 0


@dataclass
class Frame:
    """One camera frame: RGB (HxWx3 uint8) and depth buffer (HxW float, 0..1 non-linear)."""

    rgb: np.ndarray
    depth: np.ndarray
    time: float


@dataclass
class WorldStats:
    steps: int = 0
    frames: int = 0
    render_ms: float = 0.0
    physics_ms: float = 0.0
    passed_end: list[str] = field(default_factory=list)


class CellWorld:
    """The cell in pybullet. ``step(n)`` advances simulated time; everything else is hardware I/O."""

    def __init__(self, classes: tuple[str, ...], seed: int = 0, belt_speed: float = 0.15) -> None:
        with quiet_stdout():
            import pybullet as p
            import pybullet_data

            self.p = p
            self.cid = p.connect(p.DIRECT)
        self.rng = np.random.default_rng(seed)
        self.classes = tuple(classes)
        self.bins = L.bins_for(self.classes)
        self.belt_speed = float(belt_speed)
        self.belt_on = True
        self.time = 0.0
        self.parts: dict[int, Part] = {}
        self._released: list[tuple[int, str, str, float]] = []
        self.stats = WorldStats()
        self.camera_dropout = 0  # frames still to drop (fault injection)
        self.slip_armed = False  # the next grasp loses its grip during the lift (fault injection)
        self.belt_travel = 0.0  # the belt encoder, metres
        self.belt_stop_at: float | None = None  # the belt halts by itself when the encoder reaches this
        self.hooks: list[
            tuple[int, object]
        ] = []  # (every n steps, callable): the controller's scan, a recorder
        self._data = pybullet_data.getDataPath()
        with quiet_stdout():
            self._build()

    # building -----------------------------------------------------------------------------
    def _build(self) -> None:
        p, cid = self.p, self.cid
        p.setAdditionalSearchPath(self._data, physicsClientId=cid)
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        p.setPhysicsEngineParameter(
            fixedTimeStep=TIME_STEP, numSolverIterations=SOLVER_ITERATIONS, physicsClientId=cid
        )
        p.loadURDF("plane.urdf", physicsClientId=cid)
        self._belt_pos = (L.BELT_X, (L.BELT_Y_FEED + L.BELT_Y_END) / 2, L.BELT_TOP / 2)
        self.belt = self._box(
            self._belt_pos,
            (L.BELT_HALF_WIDTH, (L.BELT_Y_FEED - L.BELT_Y_END) / 2, L.BELT_TOP / 2),
            (0.18, 0.18, 0.2, 1),
        )
        p.changeDynamics(self.belt, -1, lateralFriction=PART_FRICTION, physicsClientId=cid)
        half_len = (L.BELT_Y_FEED - L.BELT_Y_END) / 2
        for side in (-1, 1):
            x = L.BELT_X + side * (L.BELT_HALF_WIDTH + 0.005)
            self._box(
                (x, (L.BELT_Y_FEED + L.BELT_Y_END) / 2, L.BELT_TOP + L.RAIL_HEIGHT / 2),
                (0.005, half_len, L.RAIL_HEIGHT / 2),
                (0.75, 0.75, 0.72, 1),
            )
        for spec in self.bins.values():
            self._bin(spec.x, spec.y)
        self.robot = p.loadURDF("franka_panda/panda.urdf", useFixedBase=True, physicsClientId=cid)
        for link in (9, 10):
            p.changeDynamics(
                self.robot, link, lateralFriction=FINGER_FRICTION, spinningFriction=0.01, physicsClientId=cid
            )
        gear = p.createConstraint(
            self.robot, 9, self.robot, 10, p.JOINT_GEAR, [1, 0, 0], [0, 0, 0], [0, 0, 0], physicsClientId=cid
        )
        p.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=cid)
        self._camera_matrices()

    def _box(self, centre, half, rgba) -> int:
        p, cid = self.p, self.cid
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=cid)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=cid)
        return p.createMultiBody(0, col, vis, basePosition=centre, physicsClientId=cid)

    def _bin(self, x: float, y: float) -> None:
        inner, wall, h = L.BIN_INNER_HALF, 0.006, L.BIN_WALL_HEIGHT
        colour = (0.55, 0.42, 0.25, 1)
        self._box((x, y, 0.004), (inner + wall, inner + wall, 0.004), colour)
        for dx, dy, hx, hy in (
            (inner + wall / 2, 0, wall / 2, inner),
            (-inner - wall / 2, 0, wall / 2, inner),
            (0, inner + wall / 2, inner + wall, wall / 2),
            (0, -inner - wall / 2, inner + wall, wall / 2),
        ):
            self._box((x + dx, y + dy, h / 2), (hx, hy, h / 2), colour)

    def _camera_matrices(self) -> None:
        p = self.p
        self.view = p.computeViewMatrix(L.CAMERA_EYE, L.CAMERA_TARGET, L.CAMERA_UP, physicsClientId=self.cid)
        self.proj = p.computeProjectionMatrixFOV(
            L.CAMERA_FOV, 1.0, L.CAMERA_NEAR, L.CAMERA_FAR, physicsClientId=self.cid
        )

    # feeding ------------------------------------------------------------------------------
    def feed(self, cls: str, item: str) -> int:
        """Drop a part of ``cls`` at the feed end of the belt (the upstream singulator)."""
        from deepapps_vision.scenes.render import OBJECTS

        p, cid, rng = self.p, self.cid, self.rng
        (lo, hi), mass, recolour = PART_SIZES[cls]
        urdf = OBJECTS[cls][0]
        pos = [
            L.BELT_X + rng.uniform(-L.FEED_JITTER_X, L.FEED_JITTER_X),
            L.BELT_Y_FEED - 0.08,
            L.BELT_TOP + 0.06,
        ]
        orn = p.getQuaternionFromEuler([0, 0, rng.uniform(-math.pi, math.pi)])
        with quiet_stdout():
            body = p.loadURDF(urdf, pos, orn, globalScaling=float(rng.uniform(lo, hi)), physicsClientId=cid)
        p.changeDynamics(
            body,
            -1,
            mass=mass,
            lateralFriction=PART_FRICTION,
            spinningFriction=0.005,
            rollingFriction=0.01,
            physicsClientId=cid,
        )
        if recolour:
            p.changeVisualShape(
                body, -1, rgbaColor=rng.uniform(0.05, 1.0, 3).tolist() + [1], physicsClientId=cid
            )
        self.parts[body] = Part(body, cls, item, self.time)
        return body

    def feed_clear(self, gap: float = 0.14) -> bool:
        """The singulator's own sensor: is the feed end free for the next part?"""
        for part in self.parts.values():
            y = self._pos(part.body)[1]
            if y > L.BELT_Y_FEED - 0.08 - gap and self._on_belt(part.body):
                return False
        return True

    # stepping -----------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """Advance ``n`` physics steps, carrying parts that touch the belt and watching its end."""
        import time as _time

        t0 = _time.perf_counter()
        p, cid = self.p, self.cid
        for _ in range(n):
            if self.belt_on and self.belt_stop_at is not None and self.belt_travel >= self.belt_stop_at:
                self.belt_on = False
            self._drive_belt(p, cid)
            p.stepSimulation(physicsClientId=cid)
            self.time += TIME_STEP
            self.stats.steps += 1
            if self.belt_on:
                self.belt_travel += self.belt_speed * TIME_STEP
            for every, hook in self.hooks:
                if self.stats.steps % every == 0:
                    hook()
        self._watch_belt_end()
        self.stats.physics_ms += (_time.perf_counter() - t0) * 1e3

    def _drive_belt(self, p, cid) -> None:
        """The belt is a kinematic slab held in place but given the belt's velocity, so friction at
        its surface carries parts (and holds them when it stops) without moving the slab itself."""
        p.resetBasePositionAndOrientation(self.belt, self._belt_pos, (0, 0, 0, 1), physicsClientId=cid)
        p.resetBaseVelocity(
            self.belt, [0.0, -self.belt_speed if self.belt_on else 0.0, 0.0], [0, 0, 0], physicsClientId=cid
        )

    def run_for(self, seconds: float) -> None:
        self.step(max(1, int(round(seconds / TIME_STEP))))

    def _touching(self, a: int, b: int) -> bool:
        return bool(self.p.getContactPoints(a, b, physicsClientId=self.cid))

    def _on_belt(self, body: int) -> bool:
        x, y, z = self._pos(body)
        return (
            abs(x - L.BELT_X) <= L.BELT_HALF_WIDTH + 0.02 and L.BELT_Y_END <= y <= L.BELT_Y_FEED and z < 0.2
        )

    def _pos(self, body: int) -> tuple[float, float, float]:
        return self.p.getBasePositionAndOrientation(body, physicsClientId=self.cid)[0]

    def _watch_belt_end(self) -> None:
        """The photo-eye at the discharge end: parts that ride off go down the reject chute."""
        for body, part in list(self.parts.items()):
            x, y, z = self._pos(body)
            at_end = y < L.BELT_Y_END - 0.02 and abs(x - L.BELT_X) < L.BELT_HALF_WIDTH + 0.05 and z < 0.15
            if at_end or z < -0.5:
                self.stats.passed_end.append(part.item)
                self.remove(body)

    def take_passed(self) -> list[str]:
        """Items the end-of-belt photo-eye saw leave since the last call (read by the controller)."""
        out, self.stats.passed_end = self.stats.passed_end, []
        return out

    def remove(self, body: int) -> None:
        self.parts.pop(body, None)
        self.p.removeBody(body, physicsClientId=self.cid)

    # camera -------------------------------------------------------------------------------
    def camera(self) -> Frame | None:
        """One overhead frame (RGB + depth). ``None`` while a camera dropout is injected."""
        import time as _time

        if self.camera_dropout > 0:
            self.camera_dropout -= 1
            return None
        t0 = _time.perf_counter()
        p, size = self.p, L.CAMERA_SIZE
        _, _, rgba, depth, _ = p.getCameraImage(
            size,
            size,
            self.view,
            self.proj,
            renderer=p.ER_TINY_RENDERER,
            lightDirection=[0.4, 0.3, 1.0],
            shadow=0,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self.cid,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[:, :, :3].copy()
        frame = Frame(rgb, np.asarray(depth, dtype=np.float32).reshape(size, size), self.time)
        self.stats.frames += 1
        self.stats.render_ms += (_time.perf_counter() - t0) * 1e3
        return frame

    def overview(self, width: int = 480, height: int = 360) -> np.ndarray:
        """A wide view of the whole cell for videos (not used by the controller)."""
        p = self.p
        view = p.computeViewMatrixFromYawPitchRoll(
            [0.15, 0.05, 0.1], 1.55, 35, -42, 0, 2, physicsClientId=self.cid
        )
        proj = p.computeProjectionMatrixFOV(55, width / height, 0.05, 5.0, physicsClientId=self.cid)
        _, _, rgba, _, _ = p.getCameraImage(
            width,
            height,
            view,
            proj,
            renderer=p.ER_TINY_RENDERER,
            lightDirection=[0.4, 0.3, 1.0],
            shadow=0,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self.cid,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    # scoring (truth) ----------------------------------------------------------------------
    def note_release(self, robot: int, fingers: tuple[int, int], item: str, claimed_bin: str) -> None:
        """Scoring hook at a release: remember which part left the fingers, to score where it lands."""
        held = {
            c[2]
            for f in fingers
            for c in self.p.getContactPoints(bodyA=robot, linkIndexA=f, physicsClientId=self.cid)
        }
        for body in held & set(self.parts):
            self._released.append((body, item, claimed_bin, self.time))

    def settled_scores(self, after: float = 0.6) -> list[dict]:
        """Parts released at least ``after`` seconds ago: where they landed (truth). Landed parts are
        taken out of the bins (the bins are emptied) so the physics stays light."""
        out, keep = [], []
        for body, item, claimed, t in self._released:
            if self.time - t < after or body not in self.parts:
                if body in self.parts:
                    keep.append((body, item, claimed, t))
                continue
            part = self.parts[body]
            landed = self.bin_of(body)
            out.append(
                {
                    "item": item,
                    "part_item": part.item,
                    "true_class": part.cls,
                    "claimed_bin": claimed,
                    "bin": landed,
                    "time": round(self.time, 3),
                }
            )
            self.remove(body)
        self._released = keep
        return out

    def loose_parts(self) -> list[int]:
        """Parts on the floor (neither on the belt nor in a bin nor held): truth, for scoring and cleanup."""
        out = []
        for body in self.parts:
            x, y, z = self._pos(body)
            if z < 0.03 and not self._on_belt(body) and self.bin_of(body) is None:
                out.append(body)
        return out

    def truth(self, body: int) -> tuple[str, tuple[float, float, float]]:
        """The class and position of a part: for scoring only, never for picking."""
        return self.parts[body].cls, self._pos(body)

    def bin_of(self, body: int) -> str | None:
        """Which bin a part lies in (truth, for scoring); None when in none."""
        x, y, z = self._pos(body)
        if z > L.BIN_WALL_HEIGHT + 0.02:
            return None
        for name, spec in self.bins.items():
            if spec.contains(x, y):
                return name
        return None

    def close(self) -> None:
        if self.cid is not None:
            with contextlib.suppress(Exception):
                self.p.disconnect(self.cid)
            self.cid = None
