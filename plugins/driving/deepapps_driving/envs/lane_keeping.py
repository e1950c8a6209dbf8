"""Lane keeping: highway-env's ``lane-keeping-v0`` and a harder variant, seen through a car-fixed camera.

The observation is what a PilotNet-style network gets: a stack of the last 4 grayscale frames,
rendered here as a 64x64 bird's-eye view fixed to the car (the lane lines, anti-aliased; heading up).
We render it ourselves with numpy instead of highway-env's pygame viewer: it is heading-aligned like
a real camera and costs about 0.1 ms, so DAgger can afford tens of thousands of frames on a CPU.

The privileged state (true lateral offset, heading error, the lane ahead) goes into
``info["driving"]``: metrics and the expert read it; the learned policy never does.
"""

from __future__ import annotations

import collections
import math

import gymnasium as gym
import numpy as np

from ..catalog import FRAME_SIZE, FRAME_STACK

RES_LATERAL = 0.3  # m per pixel across the image
RES_FORWARD = 0.5  # m per pixel along the image
EGO_ROW = 48  # the car's row: 24 m visible ahead, 8 m behind
STEERING_MAX = math.pi / 3  # lane-keeping-v0's steering range (rad)
WHEELBASE = 5.0  # highway-env BicycleVehicle: LENGTH_A + LENGTH_B
CAR_WIDTH = 2.0

NARROW = {
    "lane_width": 3.5,
    "amplitude": (2.0, 4.0),  # m, drawn per episode
    "period": (60.0, 100.0),  # m, drawn per episode (lane-keeping-v0: 5 m and 100 m)
    "steering_noise": 0.02,  # std of the noise added to the steering command, in action units
    "steering_delay": 2,  # policy steps (0.2 s) between a command and its effect
    "start_offset": 0.3,  # m, uniform initial lateral offset
    "start_heading": 0.03,  # rad, uniform initial heading error
}


def departure_threshold(lane_width: float) -> float:
    """|offset| beyond which a wheel is over the lane line (openpilot's lane departure)."""
    return lane_width / 2 - CAR_WIDTH / 2


def _true_sine_lane_class():
    from highway_env.road.lane import AbstractLane, LineType

    class TrueSineLane(AbstractLane):
        """y = A sin(w x + phase) with lateral offsets along the curve's normal (a real lane width).

        highway-env's SineLane offsets vertically, which narrows the lane where the road is steep.
        """

        def __init__(self, length_x: float, amplitude: float, pulsation: float, phase: float, width: float):
            self.amplitude, self.pulsation, self.phase, self.width = amplitude, pulsation, phase, width
            self.line_types = (LineType.CONTINUOUS, LineType.CONTINUOUS)
            self.forbidden, self.speed_limit, self.priority = False, 20.0, 0
            self._x = np.linspace(0.0, length_x, int(length_x * 4) + 1)
            dydx = amplitude * pulsation * np.cos(pulsation * self._x + phase)
            seg = np.sqrt(1 + dydx**2)
            self._s = np.concatenate([[0.0], np.cumsum((seg[1:] + seg[:-1]) / 2 * np.diff(self._x))])
            self.length = float(self._s[-1])

        def _x_of_s(self, s: float) -> float:
            return float(np.interp(s, self._s, self._x, left=s, right=self._x[-1] + s - self._s[-1]))

        def _centre(self, x: float) -> tuple[np.ndarray, float]:
            y = self.amplitude * math.sin(self.pulsation * x + self.phase)
            heading = math.atan(self.amplitude * self.pulsation * math.cos(self.pulsation * x + self.phase))
            return np.array([x, y]), heading

        def position(self, longitudinal: float, lateral: float) -> np.ndarray:
            centre, heading = self._centre(self._x_of_s(longitudinal))
            return centre + lateral * np.array([-math.sin(heading), math.cos(heading)])

        def heading_at(self, longitudinal: float) -> float:
            return self._centre(self._x_of_s(longitudinal))[1]

        def width_at(self, longitudinal: float) -> float:
            return self.width

        def local_coordinates(self, position: np.ndarray) -> tuple[float, float]:
            x = float(position[0])
            for _ in range(4):  # Newton steps on the squared distance to the centre line
                a, w, p = self.amplitude, self.pulsation, self.phase
                y, dy = a * math.sin(w * x + p), a * w * math.cos(w * x + p)
                ddy = -a * w * w * math.sin(w * x + p)
                g = (x - position[0]) + (y - position[1]) * dy
                h = 1 + dy * dy + (y - position[1]) * ddy
                x -= g / h if h > 1e-6 else 0.0
            centre, heading = self._centre(x)
            normal = np.array([-math.sin(heading), math.cos(heading)])
            s = float(np.interp(x, self._x, self._s, left=x, right=self._s[-1] + x - self._x[-1]))
            return s, float(np.dot(np.asarray(position) - centre, normal))

        def curvature_at(self, longitudinal: float) -> float:
            x = self._x_of_s(longitudinal)
            a, w, p = self.amplitude, self.pulsation, self.phase
            dy, ddy = a * w * math.cos(w * x + p), -a * w * w * math.sin(w * x + p)
            return ddy / (1 + dy * dy) ** 1.5

        def to_config(self) -> dict:
            return {"class_path": "TrueSineLane", "config": {}}

    return TrueSineLane


def _narrow_env_class():
    from highway_env.envs.lane_keeping_env import LaneKeepingEnv
    from highway_env.road.road import Road, RoadNetwork

    TrueSineLane = _true_sine_lane_class()

    class NarrowLaneKeepingEnv(LaneKeepingEnv):
        """lane-keeping-v0's car on a 3.5 m lane with sharper random curves, noisy and delayed steering."""

        def __init__(self, config: dict | None = None) -> None:
            self._pending: collections.deque = collections.deque()
            super().__init__(config)

        @classmethod
        def default_config(cls) -> dict:
            config = super().default_config()
            config.update({"narrow": dict(NARROW)})
            return config

        def _make_road(self) -> None:
            p = self.config["narrow"]
            rng = self.np_random
            amplitude = float(rng.uniform(*p["amplitude"]))
            period = float(rng.uniform(*p["period"]))
            phase = float(rng.uniform(0, 2 * math.pi))
            lane = TrueSineLane(400.0, amplitude, 2 * math.pi / period, phase, p["lane_width"])
            net = RoadNetwork()
            net.add_lane("a", "b", lane)
            self.lanes, self.lane = [], lane
            self.road = Road(network=net, np_random=self.np_random, record_history=False)

        def _make_vehicles(self) -> None:
            p = self.config["narrow"]
            rng = self.np_random
            offset = float(rng.uniform(-p["start_offset"], p["start_offset"]))
            heading = self.lane.heading_at(10.0) + float(rng.uniform(-p["start_heading"], p["start_heading"]))
            ego = self.action_type.vehicle_class(self.road, self.lane.position(10.0, offset), heading, 8.3)
            self.road.vehicles.append(ego)
            self.vehicle = ego
            self._pending = collections.deque([np.zeros(1, dtype=np.float32)] * p["steering_delay"])

        def step(self, action: np.ndarray):
            p = self.config["narrow"]
            self._pending.append(np.asarray(action, dtype=np.float32).reshape(1))
            applied = self._pending.popleft()
            noisy = applied + self.np_random.normal(0.0, p["steering_noise"], size=1).astype(np.float32)
            return super().step(np.clip(noisy, -1.0, 1.0))

        @property
        def pending_steering(self) -> list[float]:
            """Commands given but not applied yet (oldest first): the expert may know its own queue."""
            return [float(a[0]) for a in self._pending]

    return NarrowLaneKeepingEnv


def lane_state(env) -> dict:
    """The privileged state of the car relative to its reference lane (``env`` is the highway-env env)."""
    vehicle, lane = env.vehicle, env.lane
    if env.lanes and not lane.on_lane(vehicle.position):  # the lane the env will switch to next step
        lane = env.lanes[0]
    s, lat = lane.local_coordinates(vehicle.position)
    heading_error = _wrap(vehicle.heading - lane.heading_at(s))
    return {
        "curvature": _curvature(lane, s + max(vehicle.speed, 1.0) * 0.3),
        "lateral_offset": float(lat),
        "heading_error": float(heading_error),
        "longitudinal": float(s),
        "speed": float(vehicle.speed),
        "lane_width": float(lane.width_at(s)),
        "steering": float(vehicle.action.get("steering", 0.0)) if vehicle.action else 0.0,
        "x": float(vehicle.position[0]),
        "y": float(vehicle.position[1]),
    }


def _curvature(lane, s: float, ds: float = 1.0) -> float:
    """Signed curvature (1/m) of the lane centre at ``s`` (heading change per metre travelled)."""
    p0, p1 = lane.position(s - ds, 0.0), lane.position(s + ds, 0.0)
    dist = float(np.linalg.norm(p1 - p0)) or 1.0
    return _wrap(lane.heading_at(s + ds) - lane.heading_at(s - ds)) / dist


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class LaneCamera:
    """Renders the road's lane lines into a grayscale frame fixed to the car (heading up)."""

    def __init__(self, road, step: float = 0.25) -> None:
        from highway_env.road.lane import LineType

        points = []
        for lane in road.network.lanes_list():
            n = max(2, int(lane.length / step) + 1)
            ss = np.linspace(0.0, lane.length, n)
            for side, line in zip((-1, 1), lane.line_types, strict=False):
                if line == LineType.NONE:
                    continue
                half = side * lane.width_at(0.0) / 2
                points.append(np.array([lane.position(s, half) for s in ss]))
        self.points = np.concatenate(points) if points else np.zeros((0, 2))
        # weight per sample so a straight line along the image sums to 1 per row
        self.weight = step / RES_FORWARD

    def frame(self, position: np.ndarray, heading: float) -> np.ndarray:
        size = FRAME_SIZE
        rel = self.points - position
        c, s = math.cos(heading), math.sin(heading)
        forward = rel[:, 0] * c + rel[:, 1] * s
        lateral = -rel[:, 0] * s + rel[:, 1] * c
        row = EGO_ROW - forward / RES_FORWARD
        col = size / 2 + lateral / RES_LATERAL
        keep = (row >= 0) & (row < size - 1) & (col >= 0) & (col < size - 1)
        row, col = row[keep], col[keep]
        r0, c0 = np.floor(row).astype(int), np.floor(col).astype(int)
        fr, fc = row - r0, col - c0
        index = np.concatenate(
            [r0 * size + c0, r0 * size + c0 + 1, (r0 + 1) * size + c0, (r0 + 1) * size + c0 + 1]
        )
        weight = np.concatenate([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc]) * self.weight
        img = np.bincount(index, weights=weight, minlength=size * size).reshape(size, size)
        return (np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


class CameraLaneKeeping(gym.Wrapper):
    """Replaces the state observation by a stack of camera frames; adds ``info["driving"]``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_STACK, FRAME_SIZE, FRAME_SIZE), np.uint8)
        self._frames: collections.deque = collections.deque(maxlen=FRAME_STACK)
        self._camera: LaneCamera | None = None

    def _observe(self) -> np.ndarray:
        car = self.env.unwrapped.vehicle
        self._frames.append(self._camera.frame(car.position, car.heading))
        return np.stack(self._frames)

    def _info(self, info: dict) -> dict:
        base = self.env.unwrapped
        state = lane_state(base)
        state["crashed"] = False
        state["pending_steering"] = list(getattr(base, "pending_steering", []))
        return {**info, "driving": state}

    def reset(self, **kwargs):
        _, info = self.env.reset(**kwargs)
        self._camera = LaneCamera(self.env.unwrapped.road)
        self._frames.clear()
        first = self._observe()
        for _ in range(FRAME_STACK - 1):
            self._frames.append(first[-1])
        return np.stack(self._frames), self._info(info)

    def step(self, action):
        _, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(), reward, terminated, truncated, self._info(info)


def make(variant: str = "v0", render_mode: str | None = None, **config) -> gym.Env:
    """``lane-keeping-v0`` (variant ``v0``) or the 3.5 m variant (``narrow``), camera-observed."""
    if variant == "v0":
        from highway_env.envs.lane_keeping_env import LaneKeepingEnv

        env = LaneKeepingEnv(config or None)
    else:
        env = _narrow_env_class()(config or None)
    env.render_mode = render_mode  # LaneKeepingEnv's constructor takes no render_mode
    return CameraLaneKeeping(env)
