"""``WarehouseEnv``: N robots carry parcels from shelves to packing stations (a PettingZoo ParallelEnv).

Every robot always has a job from the warehouse system: go to a pick spot, pick the parcel, carry it
to a station. Robots move one cell per step (stay, up, down, left, right), all at once. Two robots
aiming at the same cell, two swapping places, or one driving into a robot that stands still is a
*collision*: the robots involved stay where they were. A robot blocked only because the one ahead
was blocked just waits.

Observation (per robot, 69 floats in [-1, 1]): own position, carrying flag, the direction and
shortest-path distance to its target, for each move whether it is free, shortens the path, or runs
into a robot, a 5x5 window of shelves and robots around it, and how long it has made no progress.
No two robots are sent to the same pick spot at once. Reward: +1 per delivery, +0.5 per
pick, -0.5 per collision, -0.01 per step, and +0.05 per cell of progress along the shortest path.
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from .layout import MOVES, Floor, make_floor

WINDOW = 2  # cells each side: a 5x5 view
OBS_SIZE = 2 + 1 + 3 + 4 * 3 + 2 * (2 * WINDOW + 1) ** 2 + 1
STUCK_SCALE = 10.0  # steps without progress that read as 1.0
R_DELIVER, R_PICK, R_COLLIDE, R_STEP, R_PROGRESS = 1.0, 0.5, -0.5, -0.01, 0.05


class WarehouseEnv(ParallelEnv):
    metadata = {
        "name": "deepapps_warehouse_v0",
        "render_modes": ["rgb_array", "ansi"],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        n_robots: int = 6,
        width: int = 14,
        height: int = 10,
        stations: int = 3,
        max_steps: int = 200,
        render_mode: str | None = None,
    ) -> None:
        self.floor: Floor = make_floor(width, height, stations)
        free_cells = int((~self.floor.shelf).sum()) - len(self.floor.stations)
        if not 1 <= n_robots <= free_cells // 2:
            raise ValueError(f"n_robots must be 1-{free_cells // 2} on a {width}x{height} floor")
        self.n_robots, self.max_steps, self.render_mode = n_robots, max_steps, render_mode
        self.possible_agents = [f"robot_{i}" for i in range(n_robots)]
        self.agents: list[str] = []
        self.rng = np.random.default_rng()
        self.pos = np.zeros((n_robots, 2), dtype=np.int64)
        self.carrying = np.zeros(n_robots, dtype=bool)
        self.targets: list[tuple[int, int]] = []
        self.stuck = np.zeros(n_robots, dtype=np.int64)
        self.steps = 0
        self.stats: dict[str, int] = {}
        # shelves and the outside, padded so every robot's window is a plain slice
        self._walls = np.pad(self.floor.shelf.astype(np.float32), WINDOW, constant_values=1.0)

    @functools.cache  # noqa: B019  (one space per agent, as PettingZoo recommends)
    def observation_space(self, agent: str) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, shape=(OBS_SIZE,), dtype=np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(len(MOVES))

    # episode ------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        floor = self.floor
        cells = [
            (x, y)
            for y in range(floor.height)
            for x in range(floor.width)
            if floor.free(x, y) and (x, y) not in floor.stations
        ]
        chosen = self.rng.choice(len(cells), size=self.n_robots, replace=False)
        self.pos = np.array([cells[i] for i in chosen], dtype=np.int64)
        self.carrying[:] = False
        self.targets = []
        for _ in range(self.n_robots):
            self.targets.append(self._pick_job())
        self.stuck = np.zeros(self.n_robots, dtype=np.int64)
        self.steps = 0
        self.stats = {"deliveries": 0, "picks": 0, "collisions": 0, "steps": 0}
        return self._observations(), {a: {} for a in self.agents}

    def _pick_job(self) -> tuple[int, int]:
        """A pick spot no other robot is heading for or standing on."""
        taken = set(self.targets) | {(int(x), int(y)) for x, y in self.pos}
        spots = [s for s in self.floor.pick_spots if s not in taken] or self.floor.pick_spots
        return spots[int(self.rng.integers(len(spots)))]

    def _station(self, i: int) -> tuple[int, int]:
        x, y = self.pos[i]
        return min(self.floor.stations, key=lambda s: (self.floor.distance(s, x, y), s))

    def step(self, actions: dict[str, int]):
        before = [self.floor.distance(self.targets[i], *self.pos[i]) for i in range(self.n_robots)]
        moves = [int(actions.get(a, 0)) for a in self.possible_agents]
        new_pos, hit = self._resolve(moves)
        self.pos = new_pos
        rewards = np.full(self.n_robots, R_STEP)
        rewards += R_COLLIDE * hit
        for i in range(self.n_robots):
            x, y = self.pos[i]
            if (int(x), int(y)) == self.targets[i]:
                if self.carrying[i]:
                    self.carrying[i] = False
                    self.targets[i] = self._pick_job()
                    rewards[i] += R_DELIVER
                    self.stats["deliveries"] += 1
                else:
                    self.carrying[i] = True
                    self.targets[i] = self._station(i)
                    rewards[i] += R_PICK
                    self.stats["picks"] += 1
                self.stuck[i] = 0
            else:
                progress = before[i] - self.floor.distance(self.targets[i], x, y)
                rewards[i] += R_PROGRESS * progress
                self.stuck[i] = 0 if progress > 0 else self.stuck[i] + 1
        self.steps += 1
        self.stats["steps"] = self.steps
        done = self.steps >= self.max_steps
        agents = list(self.agents)
        obs = self._observations()
        rew = {a: float(rewards[i]) for i, a in enumerate(agents)}
        infos = {
            a: {"collided": bool(hit[i]), "carrying": bool(self.carrying[i])} for i, a in enumerate(agents)
        }
        terminations = dict.fromkeys(agents, False)
        truncations = dict.fromkeys(agents, done)
        if done:
            self.agents = []
        return obs, rew, terminations, truncations, infos

    # moves --------------------------------------------------------------------------------
    def _resolve(self, moves: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Apply simultaneous moves: (new positions, which robots took part in a collision)."""
        n = self.n_robots
        cur = [tuple(int(v) for v in p) for p in self.pos]
        want = []
        for i, m in enumerate(moves):
            dx, dy = MOVES[m]
            nx, ny = cur[i][0] + dx, cur[i][1] + dy
            want.append((nx, ny) if self.floor.free(nx, ny) else cur[i])
        hit = np.zeros(n, dtype=bool)
        blocked = np.zeros(n, dtype=bool)
        movers = [i for i in range(n) if want[i] != cur[i]]
        stayers = {cur[i] for i in range(n) if want[i] == cur[i]}
        for a in movers:
            for b in movers:
                if a < b and (want[a] == want[b] or (want[a] == cur[b] and want[b] == cur[a])):
                    hit[[a, b]] = blocked[[a, b]] = True
            if want[a] in stayers:
                hit[a] = blocked[a] = True
                self.stats["collisions"] += 1
        self.stats["collisions"] += _pairs(movers, want, cur)
        final = [cur[i] if blocked[i] else want[i] for i in range(n)]
        changed = True
        while changed:  # a robot may not enter a cell someone ends up in: wait behind them
            changed = False
            for i in range(n):
                if final[i] != cur[i] and any(final[j] == final[i] for j in range(n) if j != i):
                    final[i] = cur[i]
                    changed = True
        return np.array(final, dtype=np.int64), hit

    # observations -------------------------------------------------------------------------
    def _observations(self) -> dict[str, np.ndarray]:
        grid = self._robot_grid()
        return {a: self.observe_robot(i, grid) for i, a in enumerate(self.agents)}

    def _robot_grid(self) -> np.ndarray:
        """Padded (height+2W, width+2W) map: robot index + 1 where a robot stands, else 0."""
        grid = np.zeros((self.floor.height + 2 * WINDOW, self.floor.width + 2 * WINDOW), dtype=np.int64)
        for j, (x, y) in enumerate(self.pos):
            grid[y + WINDOW, x + WINDOW] = j + 1
        return grid

    def observe_robot(self, i: int, grid: np.ndarray | None = None) -> np.ndarray:
        floor = self.floor
        grid = self._robot_grid() if grid is None else grid
        x, y = (int(v) for v in self.pos[i])
        tx, ty = self.targets[i]
        dist = floor.distances[self.targets[i]]
        d = int(dist[y, x])
        scale = float(floor.width + floor.height)
        obs = [
            x / floor.width,
            y / floor.height,
            float(self.carrying[i]),
            (tx - x) / floor.width,
            (ty - y) / floor.height,
            min(d / scale, 1.0),
        ]
        for dx, dy in MOVES[1:]:
            nx, ny = x + dx, y + dy
            free = floor.free(nx, ny)
            nd = int(dist[ny, nx]) if free else d
            other = grid[ny + WINDOW, nx + WINDOW] not in (0, i + 1)
            obs += [float(free), float(np.clip(d - nd, -1, 1)), float(other)]
        walls = self._walls[y : y + 2 * WINDOW + 1, x : x + 2 * WINDOW + 1].ravel()
        window = grid[y : y + 2 * WINDOW + 1, x : x + 2 * WINDOW + 1].ravel()
        robots = np.where(window == 0, 0.0, np.where(self._carry_lookup()[window], 1.0, 0.5))
        robots[(2 * WINDOW + 1) ** 2 // 2] = 0.0  # itself
        stuck = np.float32(min(self.stuck[i] / STUCK_SCALE, 1.0))
        return np.concatenate([np.asarray(obs, dtype=np.float32), walls, robots.astype(np.float32), [stuck]])

    def _carry_lookup(self) -> np.ndarray:
        return np.concatenate([[False], self.carrying])

    # rendering ----------------------------------------------------------------------------
    def render(self):
        if self.render_mode == "ansi":
            return self.ansi()
        return render_frame(self)

    def ansi(self) -> str:
        rows = [list(r) for r in self.floor.rows()]
        for i, (x, y) in enumerate(self.pos):
            rows[y][x] = chr(ord("A") + i) if self.carrying[i] else chr(ord("a") + i)
        return "\n".join("".join(r) for r in rows)

    def close(self) -> None:
        pass


def _pairs(movers: list[int], want: list, cur: list) -> int:
    """Collisions between moving robots: one per contested cell, one per swapping pair."""
    count = 0
    cells: dict[tuple, int] = {}
    for a in movers:
        cells[want[a]] = cells.get(want[a], 0) + 1
    count += sum(1 for c in cells.values() if c > 1)
    for a in movers:
        for b in movers:
            if a < b and want[a] == cur[b] and want[b] == cur[a]:
                count += 1
    return count


def render_frame(env: WarehouseEnv, cell: int = 28) -> np.ndarray:
    """An RGB picture of the floor: shelves, stations, pick targets and robots (filled when carrying)."""
    from PIL import Image, ImageDraw

    floor = env.floor
    img = Image.new("RGB", (floor.width * cell, floor.height * cell), (236, 236, 230))
    draw = ImageDraw.Draw(img)
    for y in range(floor.height):
        for x in range(floor.width):
            box = [x * cell, y * cell, (x + 1) * cell - 1, (y + 1) * cell - 1]
            if floor.shelf[y, x]:
                draw.rectangle(box, fill=(150, 105, 60))
            else:
                draw.rectangle(box, outline=(215, 215, 208))
    for sx, sy in floor.stations:
        draw.rectangle([sx * cell, sy * cell, (sx + 1) * cell - 1, (sy + 1) * cell - 1], fill=(90, 170, 90))
    colours = [
        (220, 60, 60),
        (60, 110, 220),
        (240, 170, 30),
        (150, 70, 200),
        (30, 170, 170),
        (230, 90, 170),
        (120, 120, 120),
        (100, 160, 40),
    ]
    for i, (x, y) in enumerate(env.pos):
        colour = colours[i % len(colours)]
        tx, ty = env.targets[i]
        draw.line(
            [(x + 0.5) * cell, (y + 0.5) * cell, (tx + 0.5) * cell, (ty + 0.5) * cell], fill=colour, width=1
        )
        pad = 4
        shape = [x * cell + pad, y * cell + pad, (x + 1) * cell - pad, (y + 1) * cell - pad]
        draw.ellipse(shape, fill=colour if env.carrying[i] else (255, 255, 255), outline=colour, width=3)
    return np.asarray(img)
