"""Lane change: highway-env's ``highway-fast-v0`` with an order-independent observation.

highway-env's FAQ warns that an MLP on the Kinematics list depends on the order of the vehicles;
an occupancy grid does not. We build the grid with numpy (highway-env's own goes through pandas
and costs most of a step): 11 cells of 5 m along the road (ego in the middle) by 5 cells of 4 m
(one lane) across, with 4 channels: presence, absolute speed ((v - 20) / 10), speed relative to
the ego car (/ 10), and on-road. The ego car occupies the centre cell.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from ..catalog import GRID_SHAPE

CELL_X, CELL_Y = 5.0, 4.0
ROWS, COLS = GRID_SHAPE[1], GRID_SHAPE[2]


def occupancy_grid(env) -> np.ndarray:
    """The (4, 11, 5) grid around ``env.vehicle`` (``env`` is the highway-env env)."""
    ego = env.vehicle
    grid = np.zeros(GRID_SHAPE, dtype=np.float32)
    others = sorted(env.road.vehicles, key=lambda v: -abs(v.position[0] - ego.position[0]))
    for v in others:  # nearest written last
        dx, dy = v.position - ego.position
        row = int(np.floor(dx / CELL_X + ROWS / 2))
        col = int(np.floor(dy / CELL_Y + COLS / 2))
        if 0 <= row < ROWS and 0 <= col < COLS:
            vx = v.speed * np.cos(v.heading)
            grid[0, row, col] = 1.0
            grid[1, row, col] = np.clip((vx - 20.0) / 10.0, -1, 1)
            grid[2, row, col] = np.clip((vx - ego.speed * np.cos(ego.heading)) / 10.0, -1, 1)
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

    settings = {"observation": {"type": "AttributesObservation", "attributes": ["time"]}}
    settings.update(config)
    return GridLaneChange(HighwayEnvFast(settings, render_mode=render_mode))
