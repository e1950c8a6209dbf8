"""Lane change: highway-env's ``highway-fast-v0`` with an order-independent observation.

highway-env's FAQ warns that an MLP on the Kinematics list depends on the order of the vehicles;
an occupancy grid does not. We build the grid with numpy (highway-env's own goes through pandas
and costs most of a step): 21 cells of 5 m along the road (5 behind the ego car's row, 15 ahead:
27.5 m back, 77.5 m forward) by 5 cells of 4 m (one lane) across, with 4 channels: presence,
absolute forward speed ((v - 15) / 15, so 0-30 m/s fill [-1, 1]), speed relative to the ego car
(/ 20), and on-road. The ego car occupies cell (EGO_ROW, 2), so channel 1 there is its own speed.

Two changes to highway-fast-v0's configuration, both measured in docs/driving.md: the ego car's
cruise-control set points are ``TARGET_SPEEDS`` (0-30 m/s in 5 m/s steps instead of 20, 25, 30:
with 20 m/s as the floor it could not stay behind the slower cars it met, the cause of most
crashes), and the view reaches 77.5 m ahead instead of 27.5 m (one SLOWER per second sheds 5 m/s,
so closing on a car 15 m/s slower needs about 3 s of warning).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from ..catalog import GRID_SHAPE

CELL_X, CELL_Y = 5.0, 4.0
ROWS, COLS = GRID_SHAPE[1], GRID_SHAPE[2]
EGO_ROW = 5  # rows 0-4 lie behind the ego car, rows 6-20 ahead of it
SPEED_OFFSET, SPEED_SCALE = 15.0, 15.0  # channel 1 = (vx - 15) / 15
RELATIVE_SCALE = 20.0  # channel 2 = (vx - ego vx) / 20
TARGET_SPEEDS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0)  # highway-fast-v0's default: 20, 25, 30


def occupancy_grid(env) -> np.ndarray:
    """The (4, 21, 5) grid around ``env.vehicle`` (``env`` is the highway-env env)."""
    ego = env.vehicle
    grid = np.zeros(GRID_SHAPE, dtype=np.float32)
    others = sorted(env.road.vehicles, key=lambda v: -abs(v.position[0] - ego.position[0]))
    for v in others:  # nearest written last
        dx, dy = v.position - ego.position
        row = int(np.floor(dx / CELL_X + 0.5)) + EGO_ROW
        col = int(np.floor(dy / CELL_Y + COLS / 2))
        if 0 <= row < ROWS and 0 <= col < COLS:
            vx = v.speed * np.cos(v.heading)
            grid[0, row, col] = 1.0
            grid[1, row, col] = np.clip((vx - SPEED_OFFSET) / SPEED_SCALE, -1, 1)
            grid[2, row, col] = np.clip((vx - ego.speed * np.cos(ego.heading)) / RELATIVE_SCALE, -1, 1)
    lanes = env.config["lanes_count"]
    width = 4.0
    for col in range(COLS):
        y = ego.position[1] + (col + 0.5 - COLS / 2) * CELL_Y
        grid[3, :, col] = 1.0 if -width / 2 <= y <= (lanes - 0.5) * width else 0.0
    return grid


class GridLaneChange(gym.Wrapper):
    """Occupancy-grid observation and ``info["driving"]`` for highway-fast-v0."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, GRID_SHAPE, np.float32)

    def _info(self, info: dict) -> dict:
        base = self.env.unwrapped
        ego = base.vehicle
        return {
            **info,
            "driving": {
                "speed": float(ego.speed),
                "x": float(ego.position[0]),
                "y": float(ego.position[1]),
                "lane": int(ego.lane_index[2]) if ego.lane_index else 0,
                "crashed": bool(ego.crashed),
            },
        }

    def reset(self, **kwargs):
        _, info = self.env.reset(**kwargs)
        return occupancy_grid(self.env.unwrapped), self._info(info)

    def step(self, action):
        _, reward, terminated, truncated, info = self.env.step(int(action))
        return occupancy_grid(self.env.unwrapped), reward, terminated, truncated, self._info(info)


def make(variant: str = "highway-fast", render_mode: str | None = None, **config) -> gym.Env:
    from highway_env.envs.highway_env import HighwayEnvFast

    settings = {
        "observation": {"type": "AttributesObservation", "attributes": ["time"]},
        "action": {"type": "DiscreteMetaAction", "target_speeds": list(TARGET_SPEEDS)},
    }
    settings.update(config)
    return GridLaneChange(HighwayEnvFast(settings, render_mode=render_mode))
