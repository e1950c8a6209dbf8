"""The warehouse floor: shelf rows with aisles between them, packing stations on the left wall.

``#`` shelf (robots cannot enter), ``.`` floor, ``S`` packing station. Parcels are picked from the
floor cells directly above or below a shelf (the pick spots) and dropped at a station. Shortest
path distances to every pick spot and station are computed once per floor (BFS around shelves).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

MOVES = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))  # stay, up, down, left, right (x, y)
MOVE_NAMES = ("stay", "up", "down", "left", "right")
UNREACHABLE = 10_000


@dataclass
class Floor:
    width: int
    height: int
    shelf: np.ndarray  # (height, width) bool
    stations: list[tuple[int, int]]
    pick_spots: list[tuple[int, int]]
    distances: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def free(self, x: int, y: int) -> bool:
        return 0 <= x < self.width and 0 <= y < self.height and not self.shelf[y, x]

    def distance(self, target: tuple[int, int], x: int, y: int) -> int:
        return int(self.distances[target][y, x])

    def rows(self) -> list[str]:
        out = []
        for y in range(self.height):
            row = ["#" if self.shelf[y, x] else "." for x in range(self.width)]
            for sx, sy in self.stations:
                if sy == y:
                    row[sx] = "S"
            out.append("".join(row))
        return out


def make_floor(width: int = 14, height: int = 10, stations: int = 3) -> Floor:
    """Shelf rows two cells deep between one-cell aisles; a vertical aisle every fifth column."""
    if width < 8 or height < 6:
        raise ValueError("the warehouse needs at least 8 x 6 cells")
    shelf = np.zeros((height, width), dtype=bool)
    y = 1
    while y + 2 <= height - 1:
        for x in range(3, width - 1):
            if (x - 3) % 5 != 4:
                shelf[y : y + 2, x] = True
        y += 3
    ys = np.linspace(1, height - 2, stations).round().astype(int)
    station_cells = [(0, int(v)) for v in ys]
    picks = sorted(
        {
            (x, yy)
            for yy in range(height)
            for x in range(width)
            if not shelf[yy, x] and ((yy > 0 and shelf[yy - 1, x]) or (yy < height - 1 and shelf[yy + 1, x]))
        }
    )
    floor = Floor(width, height, shelf, station_cells, picks)
    for target in set(picks) | set(station_cells):
        floor.distances[target] = bfs(floor, target)
    return floor


def bfs(floor: Floor, target: tuple[int, int]) -> np.ndarray:
    """Steps from every cell to ``target`` around the shelves (UNREACHABLE for shelf cells)."""
    dist = np.full((floor.height, floor.width), UNREACHABLE, dtype=np.int32)
    dist[target[1], target[0]] = 0
    queue = deque([target])
    while queue:
        x, y = queue.popleft()
        for dx, dy in MOVES[1:]:
            nx, ny = x + dx, y + dy
            if floor.free(nx, ny) and dist[ny, nx] == UNREACHABLE:
                dist[ny, nx] = dist[y, x] + 1
                queue.append((nx, ny))
    return dist
