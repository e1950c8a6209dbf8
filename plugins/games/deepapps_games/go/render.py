"""Draw a Go board (PIL) with stones, the last move and candidate moves with visit counts."""

from __future__ import annotations

from typing import Any

from .board import BLACK, GTP_COLUMNS, WHITE, Board, gtp_to_move


def draw_board(
    board: Board, candidates: list[dict[str, Any]] | None = None, cell: int = 48, last: int | None = None
):
    """A PIL image of ``board``; ``candidates`` (from ``SearchResult.top``) are labelled with visits."""
    from PIL import Image, ImageDraw

    n = board.n
    margin = cell
    size = margin * 2 + cell * (n - 1)
    img = Image.new("RGB", (size, size), (220, 179, 92))
    d = ImageDraw.Draw(img)
    for i in range(n):
        x = margin + i * cell
        d.line([(x, margin), (x, margin + (n - 1) * cell)], fill=(0, 0, 0), width=1)
        d.line([(margin, x), (margin + (n - 1) * cell, x)], fill=(0, 0, 0), width=1)
        d.text((x - 3, margin // 3), GTP_COLUMNS[i], fill=(0, 0, 0))
        d.text((margin // 4, x - 5), str(n - i), fill=(0, 0, 0))
    r = int(cell * 0.45)
    for p, v in enumerate(board.stones):
        if v == 0:
            continue
        row, col = divmod(p, n)
        cx, cy = margin + col * cell, margin + row * cell
        fill = (15, 15, 15) if v == BLACK else (245, 245, 245)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=(0, 0, 0))
        if last is not None and p == last:
            d.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], fill=(200, 30, 30))
    for rank, c in enumerate(candidates or []):
        if c["move"] == "pass":
            continue
        p = gtp_to_move(c["move"], n)
        row, col = divmod(p, n)
        cx, cy = margin + col * cell, margin + row * cell
        color = (40, 160, 60) if rank == 0 else (60, 110, 200)
        d.ellipse([cx - r // 2, cy - r // 2, cx + r // 2, cy + r // 2], fill=color)
        d.text((cx - 8, cy - 6), str(c["visits"]), fill=(255, 255, 255))
    _ = WHITE
    return img
