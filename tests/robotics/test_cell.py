"""The physics cell: a few real picks with the bundled detector, depth-based grasps, and recovery from
an injected gripper slip and camera dropout."""

from __future__ import annotations

import math

import numpy as np
import pytest

import deepapps


@pytest.fixture(scope="module")
def runner():
    return deepapps.load("pick-and-place", device="cpu")


def test_a_few_picks_with_the_bundled_detector(runner):
    result = runner("duck,soccer_ball,block", seed=1)
    assert result.parts == 3 and result.placed == 3
    assert result.in_a_bin == 3 and result.sort_accuracy == 1.0
    assert result.grasp_attempts >= 3 and result.pick_success_rate == pytest.approx(3 / result.grasp_attempts)
    assert 0.5 < result.mean_cycle_time_s < 6.0 and result.picks_per_hour > 200
    assert result.real_time_factor > 0 and result.timings["total"] > 0
    assert result.plot().size == (320, 384)


def test_slip_and_camera_dropout_are_recovered(runner):
    result = runner("teddy,duck", seed=2, slip_every=2, dropout_every=2)  # every 2nd grasp slips
    assert result.events.get("slip", 0) >= 1 and result.events.get("camera_dropout", 0) >= 1
    assert result.in_a_bin == 2 and result.sort_accuracy == 1.0


def test_depth_grasp_matches_the_part(tmp_path):
    from deepapps_robotics.cell.perception import DepthCamera, grasp_from_box
    from deepapps_robotics.cell.world import CellWorld

    world = CellWorld(("duck", "teddy", "lego", "soccer_ball", "mug", "block"), seed=4)
    try:
        body = world.feed("block", "b0")
        world.p.resetBasePositionAndOrientation(
            body, [0.53, 0.02, 0.1], world.p.getQuaternionFromEuler([0, 0, 0.6])
        )
        world.belt_on = False
        world.run_for(0.5)
        frame = world.camera()
        grasp = grasp_from_box(
            DepthCamera(world.view, world.proj).points(frame.depth), (0, 0, 320, 320), "block", 1.0
        )
        _, (x, y, _) = world.truth(body)  # the test may look at the truth; the cell never does
    finally:
        world.close()
    assert math.hypot(grasp.x - x, grasp.y - y) < 0.01
    assert 0.025 < grasp.width < 0.06  # across the block (5 cm), not along it (15 cm)
    closing = grasp.yaw + math.pi / 2
    across = 0.6 + math.pi / 2  # the block's short side
    assert abs(math.sin(closing - across)) < math.sin(math.radians(12))


def test_bad_inputs_are_refused_before_anything_runs():
    from deepapps_robotics.cell.runner import check_input

    for text in ("0", "banana", "duck,,banana", "", "100001"):
        with pytest.raises(deepapps.InputError):
            check_input(text)
    check_input("12")
    check_input("duck, mug")
    assert np.isfinite(1.0)


def test_cell_views_are_labelled(tmp_path):
    from deepapps_robotics.cell.views import generate

    yaml = generate(
        tmp_path, 3, seed=5, classes=("duck", "teddy", "lego", "soccer_ball", "mug", "block"), only="test"
    )
    labels = sorted((tmp_path / "labels" / "test").glob("*.txt"))
    assert yaml.exists() and len(labels) == 3 and len(list((tmp_path / "images" / "test").glob("*.png"))) == 3
    rows = [line.split() for f in labels for line in f.read_text().splitlines()]
    assert rows and all(0 <= int(r[0]) < 6 and all(0 < float(v) <= 1 for v in r[1:]) for r in rows)


def test_train_refuses_a_model():
    from deepapps_robotics.cell.train import train

    with pytest.raises(deepapps.InputError, match="--start"):
        train(
            object(),
            None,
            "unused",
            "cpu",
            "fp32",
            views=10,
            epochs=1,
            batch=2,
            lr0=0.01,
            seed=0,
            start=None,
            hours=None,
            workers=0,
            progress=False,
        )
