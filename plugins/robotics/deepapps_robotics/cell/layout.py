"""The cell's fixed geometry and calibration, in metres (world frame: robot base at the origin, z up).

Everything the controller may know about the cell lives here: where the belt surface is, where
the camera hangs and what it sees, where each class's bin stands. Part poses are never here: the
controller learns them from the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

# belt: runs along -y (feed end at +y, discharge end at -y), centred on x = BELT_X
BELT_X = 0.52
BELT_HALF_WIDTH = 0.12
BELT_Y_FEED = 0.80
BELT_Y_END = -0.45
BELT_TOP = 0.06  # belt surface height (calibrated)
RAIL_HEIGHT = 0.012  # side guides above the belt surface
FEED_JITTER_X = 0.04  # parts land this far either side of the belt centre line

# overhead camera above the pick window
CAMERA_EYE = (BELT_X, 0.0, BELT_TOP + 0.60)
CAMERA_TARGET = (BELT_X, 0.0, BELT_TOP)
CAMERA_UP = (1.0, 0.0, 0.0)  # image top points away from the robot
CAMERA_FOV = 36.0  # degrees (vertical)
CAMERA_SIZE = 320  # pixels, square: the bundled detector's training size
CAMERA_NEAR, CAMERA_FAR = 0.05, 2.0

# pick window: the belt stops when a detected part's centre is downstream of PICK_TRIGGER_Y
PICK_TRIGGER_Y = 0.03
PICK_WINDOW_Y = (-0.14, 0.14)

# robot poses (end effector = the grasp point between the fingertips)
HOME = (0.50, -0.22, 0.21)  # ready pose just downstream of the pick window, outside the camera's view
APPROACH_HEIGHT = 0.07  # above the grasp point before descending
BIN_RELEASE_HEIGHT = 0.20
GRIPPER_MAX_WIDTH = 0.08

# bins: one per class, between the robot and the belt's inner edge (short swings: 40-90 degrees)
BIN_CENTRES = ((0.24, 0.22), (0.24, -0.22), (0.24, 0.42), (0.24, -0.42), (0.02, 0.36), (0.02, -0.36))
BIN_INNER_HALF = 0.085
BIN_WALL_HEIGHT = 0.07
REJECT_BIN = "reject"


@dataclass(frozen=True)
class BinSpec:
    """A bin: the class it collects and the centre of its floor."""

    name: str
    x: float
    y: float

    def contains(self, x: float, y: float, margin: float = 0.01) -> bool:
        half = BIN_INNER_HALF + margin
        return abs(x - self.x) <= half and abs(y - self.y) <= half


def bins_for(classes: tuple[str, ...]) -> dict[str, BinSpec]:
    """One bin per class, in class order (at most six)."""
    if len(classes) > len(BIN_CENTRES):
        raise ValueError(f"the cell has {len(BIN_CENTRES)} bins; {len(classes)} classes do not fit")
    return {name: BinSpec(name, x, y) for name, (x, y) in zip(classes, BIN_CENTRES, strict=False)}
