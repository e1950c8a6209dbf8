"""GNU Go teacher games on Ray workers: the same data as in one process (chunks carry their seeds)."""

from __future__ import annotations

import numpy as np
import pytest


def test_teacher_games_on_ray_match_one_process(tmp_path):
    from deepapps_games.go.arena import find_gnugo
    from deepapps_games.go.teacher import generate, load_teacher

    if find_gnugo() is None:
        pytest.skip("gnugo is not installed (apt-get install gnugo)")
    kw = dict(size=5, opening=2, eps=0.1, seed=5, chunk=2, show_progress=False)
    one = generate(5, tmp_path / "one.safetensors", workers=1, **kw)
    two = generate(5, tmp_path / "two.safetensors", workers=2, **kw)
    a, _ = load_teacher(tmp_path / "one.safetensors")
    b, _ = load_teacher(tmp_path / "two.safetensors")
    assert one["positions"] == two["positions"] == len(a["z"]) > 5
    assert one["black_win_rate"] == two["black_win_rate"]
    for key in ("x", "move", "z", "own", "game"):
        np.testing.assert_array_equal(a[key], b[key])
    assert sorted(set(b["game"].tolist())) == [0, 1, 2, 3, 4]
