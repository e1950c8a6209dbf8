"""The Go board picture (render.py): geometry, stones, marks, and the click -> intersection mapping
the Go page uses (pure PIL, no network, fast)."""

from __future__ import annotations

import pytest

from deepapps_games.go.board import BLACK, WHITE, Board, gtp_to_move
from deepapps_games.go.render import BEST, BoardGeometry, draw_board, star_points
from deepapps_games.go.ui import click_to_point


def _brightness(img, xy) -> int:
    return sum(img.getpixel(xy)[:3])


@pytest.mark.parametrize(("n", "cell"), [(5, 48), (9, 40), (19, 29)])
def test_image_has_the_geometry_size(n, cell):
    img = draw_board(Board(n), cell=cell)
    assert img.size == (2 * cell + (n - 1) * cell,) * 2 == (BoardGeometry(n, cell).size,) * 2
    assert img.mode == "RGB"


def test_stones_are_dark_and_light_at_their_intersections():
    b = Board(9)
    b.play(gtp_to_move("D4", 9))  # black
    b.play(gtp_to_move("C3", 9))  # white
    geo = BoardGeometry(9, 40)
    img = draw_board(b, cell=40)
    black_xy = geo.center(gtp_to_move("D4", 9))
    white_xy = geo.center(gtp_to_move("C3", 9))
    # a few pixels off the centre (the highlight sits up-left): the stone's body
    assert _brightness(img, (black_xy[0] + 6, black_xy[1] + 6)) < 150
    assert _brightness(img, (white_xy[0] + 6, white_xy[1] + 6)) > 600
    # an empty point shows wood between the lines, not a stone
    ex, ey = geo.center(gtp_to_move("G7", 9))
    r, g, bl = img.getpixel((ex + 8, ey + 8))
    assert r > g > bl and 350 < r + g + bl < 600


def test_star_points_follow_the_usual_layout():
    assert star_points(5) == []
    assert len(star_points(7)) == 4 and gtp_to_move("C3", 7) in star_points(7)
    assert len(star_points(9)) == 5 and gtp_to_move("E5", 9) in star_points(9)
    assert len(star_points(13)) == 5 and gtp_to_move("D4", 13) in star_points(13)
    assert len(star_points(19)) == 9 and {gtp_to_move(v, 19) for v in ("D4", "K10", "Q16", "D10")} <= set(
        star_points(19)
    )
    geo = BoardGeometry(19, 30)
    img = draw_board(Board(19), cell=30)
    hx, hy = geo.center(gtp_to_move("K10", 19))
    assert _brightness(img, (hx + 1, hy + 1)) < 200  # the dot, off the grid line itself
    assert _brightness(img, (hx + 6, hy + 6)) > 350  # wood just outside it


def test_last_move_ring_and_candidates_and_ownership():
    b = Board(7)
    b.play(gtp_to_move("D4", 7))
    geo = BoardGeometry(7, 48)
    last = gtp_to_move("D4", 7)
    img = draw_board(
        b,
        cell=48,
        last=last,
        candidates=[
            {"move": "C5", "visits": 90, "winrate": 0.4},
            {"move": "pass", "visits": 1, "winrate": 0.1},
        ],
        ownership=[0.0] * 48 + [-0.95],  # G1 (last point) strongly white
    )
    cx, cy = geo.center(last)
    ring = int(48 * 0.2)
    assert _brightness(img, (cx + ring, cy)) > 500  # a light ring on the black stone
    px, py = geo.center(gtp_to_move("C5", 7))
    r, g, bl = img.getpixel((px - 16, py))  # inside the disc, left of its label
    assert bl > r and abs(bl - BEST[2]) < 60
    ox, oy = geo.center(gtp_to_move("G1", 7))
    assert _brightness(img, (ox + 3, oy + 3)) > 600  # a white ownership square on the empty point
    plain = draw_board(b, cell=48)
    assert _brightness(plain, (ox + 3, oy + 3)) < 600


@pytest.mark.parametrize(("n", "cell"), [(5, 64), (7, 70), (9, 56), (13, 40), (19, 28)])
def test_every_intersection_round_trips_through_a_click(n, cell):
    geo = BoardGeometry(n, cell)
    for p in range(n * n):
        x, y = geo.center(p)
        assert geo.point_at(x, y) == p
        # anywhere within 0.45 cell of the intersection still picks it
        assert geo.point_at(x + 0.45 * cell, y - 0.45 * cell) == p
        # the image shown smaller (a narrow column) or larger: the page's mapping
        for scale in (0.5, 0.73, 1.6):
            click = {"x": x * scale, "y": y * scale, "width": geo.size * scale, "height": geo.size * scale}
            assert click_to_point(click, n, cell) == p


def test_clicks_off_the_grid_are_ignored():
    geo = BoardGeometry(9, 40)
    assert geo.point_at(2, 2) is None  # on the coordinates in the corner
    assert geo.point_at(geo.size - 3, geo.size / 2) is None
    assert click_to_point(None, 9, 40) is None
    assert click_to_point({"x": 5, "y": 5, "width": 0, "height": 0}, 9, 40) is None


def test_board_colours_are_the_board_module_colours():
    b = Board(5)
    b.stones[0] = WHITE
    b.stones[24] = BLACK
    geo = BoardGeometry(5, 48)
    img = draw_board(b, cell=48)
    assert _brightness(img, (geo.center(0)[0] + 5, geo.center(0)[1] + 5)) > 600
    assert _brightness(img, (geo.center(24)[0] + 5, geo.center(24)[1] + 5)) < 150
