"""Draw a Go board as players know it from Sabaki or KGS (PIL): wood, grid, star points, shaded
stones, the last move, coordinates, the engine's candidate moves and its ownership estimate.

:class:`BoardGeometry` is the one mapping between intersections and pixels: :func:`draw_board`
draws with it and the Go page maps a click back to the nearest intersection with it, so the
picture and the clicks cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .board import BLACK, GTP_COLUMNS, WHITE, Board, gtp_to_move

WOOD = (219, 176, 102)
LINE = (40, 30, 15)
BEST = (50, 170, 230)  # the most visited candidate (Sabaki/Lizzie use a cyan-blue for it)


@dataclass(frozen=True)
class BoardGeometry:
    """Pixel layout of an ``n``×``n`` board: ``cell`` pixels between lines, a margin of one cell
    (room for coordinates) around the outer lines."""

    n: int
    cell: int = 48

    @property
    def margin(self) -> int:
        return self.cell

    @property
    def size(self) -> int:
        """Width (= height) of the image in pixels."""
        return 2 * self.margin + (self.n - 1) * self.cell

    def center(self, point: int) -> tuple[int, int]:
        """Pixel (x, y) of the intersection with flat index ``point`` (row 0 at the top)."""
        row, col = divmod(point, self.n)
        return self.margin + col * self.cell, self.margin + row * self.cell

    def point_at(self, x: float, y: float) -> int | None:
        """The intersection nearest to pixel (x, y), or None when the click is more than half a
        cell outside the grid (on the coordinates or the frame)."""
        col = round((x - self.margin) / self.cell)
        row = round((y - self.margin) / self.cell)
        if not (0 <= row < self.n and 0 <= col < self.n):
            return None
        return row * self.n + col

    def point_at_scaled(self, x: float, y: float, shown_width: float, shown_height: float) -> int | None:
        """:meth:`point_at` for a click on the image shown at another size (a narrow column)."""
        if shown_width <= 0 or shown_height <= 0:
            return None
        return self.point_at(x * self.size / shown_width, y * self.size / shown_height)


def star_points(n: int) -> list[int]:
    """Hoshi: the 3-3 (4-4 from 13×13 up) corner points, the centre of odd boards from 9×9,
    and the side points of odd boards from 15×15; none below 7×7."""
    if n < 7:
        return []
    edge = 3 if n >= 13 else 2
    lines = [edge, n - 1 - edge]
    mid = n // 2 if n % 2 else None
    points = {(r, c) for r in lines for c in lines}
    if mid is not None and n >= 9:
        points.add((mid, mid))
    if mid is not None and n >= 15:
        points |= {(mid, c) for c in lines} | {(r, mid) for r in lines}
    return sorted(r * n + c for r, c in points)


def draw_board(
    board: Board,
    candidates: list[dict[str, Any]] | None = None,
    cell: int = 48,
    last: int | None = None,
    ownership: list[float] | None = None,
):
    """A PIL image of ``board``.

    ``candidates`` (``SearchResult.top`` / ``GoAnalysis.top_moves``) are drawn as coloured discs
    with the win rate (percent, side to move) over the visit count; ``ownership`` (one value per
    point, +1 black .. -1 white) as black or white squares sized by certainty; ``last`` (a flat
    index) gets a ring.
    """
    from PIL import ImageDraw

    geo = BoardGeometry(board.n, cell)
    img = _wood(geo.size)
    draw = ImageDraw.Draw(img)
    _grid(draw, geo)
    _coordinates(draw, geo)
    if ownership:
        img = _ownership(img, geo, board, ownership)
    for point, colour in enumerate(board.stones):
        if colour:
            sprite = _stone(colour, max(4, int(cell * 0.48)))
            cx, cy = geo.center(point)
            img.paste(sprite, (cx - sprite.width // 2, cy - sprite.height // 2), sprite)
    draw = ImageDraw.Draw(img)
    if last is not None and 0 <= last < board.n * board.n and board.stones[last]:
        cx, cy = geo.center(last)
        r = max(3, int(cell * 0.2))
        ring = (240, 240, 240) if board.stones[last] == BLACK else (20, 20, 20)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=ring, width=max(2, cell // 16))
    if candidates:
        img = _candidates(img, geo, board, candidates)
    return img


def _wood(size: int):
    """A light wood background with faint grain (deterministic: the same board gives the same image)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), WOOD)
    draw = ImageDraw.Draw(img)
    for x in range(size):
        grain = math.sin(x * 0.21) * 3 + math.sin(x * 0.047 + 1.3) * 6 + math.sin(x * 0.9) * 1.5
        shade = tuple(max(0, min(255, int(c + grain))) for c in WOOD)
        draw.line([(x, 0), (x, size)], fill=shade)
    return img


def _grid(draw, geo: BoardGeometry) -> None:
    n, m, c = geo.n, geo.margin, geo.cell
    far = m + (n - 1) * c
    for i in range(n):
        width = 2 if i in (0, n - 1) else 1
        x = m + i * c
        draw.line([(x, m), (x, far)], fill=LINE, width=width)
        draw.line([(m, x), (far, x)], fill=LINE, width=width)
    r = max(3, c // 10)
    for p in star_points(n):
        cx, cy = geo.center(p)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=LINE)


@lru_cache(maxsize=8)
def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow without FreeType sizes: the fixed bitmap font
        return ImageFont.load_default()


def _coordinates(draw, geo: BoardGeometry) -> None:
    """Letters (GTP: no I) above and below, numbers (1 at the bottom) left and right."""
    n, m, c = geo.n, geo.margin, geo.cell
    font = _font(max(9, int(c * 0.32)))
    for i in range(n):
        pos = m + i * c
        for text, xy in (
            (GTP_COLUMNS[i], (pos, m // 2)),
            (GTP_COLUMNS[i], (pos, geo.size - m // 2)),
            (str(n - i), (m // 2, pos)),
            (str(n - i), (geo.size - m // 2, pos)),
        ):
            draw.text(xy, text, fill=LINE, font=font, anchor="mm")


@lru_cache(maxsize=16)
def _stone(colour: int, radius: int):
    """An anti-aliased stone with a soft highlight and a drop shadow (RGBA sprite, cached)."""
    from PIL import Image, ImageDraw, ImageFilter

    scale = 4
    r = radius * scale
    pad = max(2, radius // 6) * scale
    size = 2 * (r + pad)
    sprite = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    shadow = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(shadow).ellipse(
        [pad * 1.6, pad * 1.6, pad * 1.6 + 2 * r, pad * 1.6 + 2 * r], fill=(0, 0, 0, 90)
    )
    sprite = Image.alpha_composite(sprite, shadow.filter(ImageFilter.GaussianBlur(pad / 2)))
    draw = ImageDraw.Draw(sprite)
    if colour == BLACK:
        edge, core, power = (10, 10, 10), (95, 95, 100), 2.0
    else:
        edge, core, power = (196, 196, 190), (255, 255, 252), 0.8
    steps = 24
    hx, hy = pad + r * 0.7, pad + r * 0.7  # the highlight sits up and to the left
    for k in range(steps):
        t = k / (steps - 1)
        rad = r * (1 - t * (0.75 if colour == BLACK else 0.85))
        cx = (pad + r) * (1 - t) + hx * t
        cy = (pad + r) * (1 - t) + hy * t
        fill = tuple(int(e + (c - e) * t**power) for e, c in zip(edge, core, strict=True)) + (255,)
        draw.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=fill)
    if colour == WHITE:
        draw.ellipse([pad, pad, pad + 2 * r, pad + 2 * r], outline=(120, 120, 115, 255), width=scale)
    return sprite.resize((size // scale, size // scale), Image.LANCZOS)


def _ownership(img, geo: BoardGeometry, board: Board, ownership: list[float]):
    """KataGo-style territory squares: black or white, sized and faded by certainty; on stones
    only where the owner disagrees with the stone (a stone the network thinks is dead)."""
    from PIL import Image, ImageDraw

    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for p, v in enumerate(ownership[: geo.n * geo.n]):
        stone = board.stones[p]
        if abs(v) < 0.15 or (stone and stone * v > 0):
            continue
        half = geo.cell * (0.1 + 0.15 * min(1.0, abs(v)))
        cx, cy = geo.center(p)
        colour = (0, 0, 0) if v > 0 else (255, 255, 255)
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=colour + (int(90 + 130 * abs(v)),))
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


def _candidates(img, geo: BoardGeometry, board: Board, candidates: list[dict[str, Any]]):
    """Translucent discs on the candidate moves: the best in blue, the others from green (many
    visits) to red (few); win rate (percent) above the visit count."""
    from PIL import Image, ImageDraw

    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    top = max((c["visits"] for c in candidates), default=1) or 1
    r = geo.cell * 0.44
    labels = []
    for rank, cand in enumerate(candidates):
        if cand["move"] == "pass":
            continue
        point = gtp_to_move(cand["move"], board.n)
        cx, cy = geo.center(point)
        share = cand["visits"] / top
        colour = BEST if rank == 0 else (int(230 - 150 * share), int(90 + 110 * share), 60)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour + (215,))
        labels.append((cx, cy, f"{cand['winrate'] * 100:.0f}", _short(cand["visits"])))
    img = Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")
    draw = ImageDraw.Draw(img)
    big, small = _font(max(8, int(geo.cell * 0.3))), _font(max(7, int(geo.cell * 0.22)))
    for cx, cy, win, visits in labels:
        draw.text((cx, cy - geo.cell * 0.1), win, fill=(15, 15, 15), font=big, anchor="mm")
        draw.text((cx, cy + geo.cell * 0.2), visits, fill=(25, 25, 25), font=small, anchor="mm")
    return img


def _short(visits: int) -> str:
    return f"{visits / 1000:.1f}k" if visits >= 1000 else str(visits)
