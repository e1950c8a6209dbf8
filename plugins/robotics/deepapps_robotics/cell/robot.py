"""The Panda arm: inverse kinematics, smooth joint-space moves and a parallel gripper.

Moves are planned in joint space between IK solutions with a minimum-jerk profile whose
duration respects the Panda's joint speed limits; the motors track the profile under position
control while the physics runs, so a held part feels every acceleration.
"""

from __future__ import annotations

import math

import numpy as np

from . import layout as L
from .world import TIME_STEP, CellWorld

ARM_JOINTS = tuple(range(7))
FINGERS = (9, 10)
EE_LINK = 11  # panda_grasptarget: the point between the fingertips
MAX_VEL = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])  # rad/s (Panda datasheet)
MAX_ACC = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])  # rad/s^2 (Panda datasheet)
SPEED_SCALE = 0.9  # of the velocity limits
ACC_SCALE = 0.9  # of the acceleration limits
ARM_FORCES = [87.0] * 4 + [12.0] * 3
LOWER = [-2.9671, -1.8326, -2.9671, -3.0718, -2.9671, -0.0175, -2.9671]
UPPER = [2.9671, 1.8326, 2.9671, -0.0698, 2.9671, 3.7525, 2.9671]
REST = [0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.785]
GRIP_FORCE = 60.0
FINGER_SPEED = 0.2  # m/s per finger
EMPTY_WIDTH = 0.004  # fingers closer than this hold nothing
IK_TOLERANCE = 0.002  # metres
IK_GIVE_UP = 0.02


class IKError(RuntimeError):
    """The arm cannot reach a pose."""


RAMPS = (0.5, 0.4, 0.3, 0.2)  # candidate acceleration shares of a move (0.5: no cruise)


def move_duration(delta: np.ndarray, min_time: float) -> tuple[float, float]:
    """The shortest synchronised trapezoid move (duration, ramp share) keeping every joint inside
    its speed and acceleration limits: with ramp share r the peak speed is 1/(1-r) of the mean and
    the acceleration 1/(r(1-r)) x delta/T^2."""
    dist = np.abs(delta)
    best = (float("inf"), 0.5)
    for r in RAMPS:
        t_vel = dist / ((1 - r) * MAX_VEL * SPEED_SCALE)
        t_acc = np.sqrt(dist / (r * (1 - r) * MAX_ACC * ACC_SCALE))
        t = float(np.max(np.maximum(t_vel, t_acc)))
        if t < best[0]:
            best = (t, r)
    return max(min_time, best[0]), best[1]


def trapezoid(s: float, r: float = 0.25) -> float:
    """Share of the move done at time share ``s`` (0..1) of a symmetric trapezoid with ramp share ``r``."""
    peak = 1.0 / (1.0 - r)
    if s < r:
        return 0.5 * peak * s * s / r
    if s > 1 - r:
        return 1.0 - 0.5 * peak * (1 - s) ** 2 / r
    return 0.5 * peak * r + peak * (s - r)


class PandaArm:
    """Hardware-like interface to the simulated Panda: ``move_to``, ``open``, ``close``, ``width``."""

    def __init__(self, world: CellWorld) -> None:
        self.world = world
        self.p, self.cid, self.body = world.p, world.cid, world.robot
        self.q = np.array(REST, dtype=float)
        for j, q in zip(ARM_JOINTS, REST, strict=True):
            self.p.resetJointState(self.body, j, q, physicsClientId=self.cid)
        for j in FINGERS:
            self.p.resetJointState(self.body, j, 0.04, physicsClientId=self.cid)
        self.grip_target = 0.04
        self.grip_force = GRIP_FORCE
        self._grip_lost_until = -1.0
        self._grip_lost_width = 0.0
        self.q = self.ik(L.HOME, 0.0)
        for j, q in zip(ARM_JOINTS, self.q, strict=True):
            self.p.resetJointState(self.body, j, q, physicsClientId=self.cid)
        self._hold_arm(self.q)
        self._drive_fingers()

    # kinematics ---------------------------------------------------------------------------
    def ik(self, pos, yaw: float) -> np.ndarray:
        """Joint angles that put the grasp point at ``pos`` pointing down, rotated by ``yaw`` about z.

        pybullet's IK starts from the arm's current joints and may stop short; each answer is checked
        by forward kinematics and refined from itself, then from the rest pose, until it is within
        IK_TOLERANCE (raises :class:`IKError` when no start gets there).
        """
        orn = self.p.getQuaternionFromEuler([math.pi, 0.0, yaw])
        saved = [self.p.getJointState(self.body, j, physicsClientId=self.cid)[:2] for j in ARM_JOINTS]
        best, best_err = None, float("inf")
        try:
            for start in (None, REST):
                q = self._solve(pos, orn, start)
                for _ in range(4):
                    err = self._reach_error(q, pos)
                    if err < best_err:
                        best, best_err = q, err
                    if err < IK_TOLERANCE:
                        return q
                    q = self._solve(pos, orn, q)
        finally:
            for j, (angle, speed) in zip(ARM_JOINTS, saved, strict=True):
                self.p.resetJointState(self.body, j, angle, speed, physicsClientId=self.cid)
        if best_err > IK_GIVE_UP:
            raise IKError(
                f"no joint solution within {IK_GIVE_UP * 1000:.0f} mm of {np.round(pos, 3).tolist()}"
            )
        return best

    def _solve(self, pos, orn, start) -> np.ndarray:
        """One pybullet IK call from ``start`` (joints; None: where the arm is)."""
        p = self.p
        if start is not None:
            for j, q in zip(ARM_JOINTS, start, strict=True):
                p.resetJointState(self.body, j, float(q), physicsClientId=self.cid)
        ranges = [u - lo for lo, u in zip(LOWER, UPPER, strict=True)]
        sol = p.calculateInverseKinematics(
            self.body,
            EE_LINK,
            list(pos),
            orn,
            LOWER,
            UPPER,
            ranges,
            list(self.q) if self.q is not None else REST,
            maxNumIterations=200,
            residualThreshold=1e-5,
            physicsClientId=self.cid,
        )
        return np.clip(np.array(sol[:7], dtype=float), LOWER, UPPER)

    def _reach_error(self, q: np.ndarray, pos) -> float:
        for j, angle in zip(ARM_JOINTS, q, strict=True):
            self.p.resetJointState(self.body, j, float(angle), physicsClientId=self.cid)
        got = self.p.getLinkState(
            self.body, EE_LINK, computeForwardKinematics=True, physicsClientId=self.cid
        )[4]
        return float(np.linalg.norm(np.asarray(got) - np.asarray(pos)))

    def ee_position(self) -> np.ndarray:
        state = self.p.getLinkState(
            self.body, EE_LINK, computeForwardKinematics=True, physicsClientId=self.cid
        )
        return np.array(state[4])

    # motion -------------------------------------------------------------------------------
    def move_to(self, pos, yaw: float, min_time: float = 0.15, watch=None) -> float:
        """Move the grasp point to ``pos`` (pointing down, ``yaw``); returns the simulated seconds taken.

        ``watch`` is called every step (the controller's slip detector); a truthy return stops the move.
        """
        target = self.ik(pos, yaw)
        return self.move_joints(target, min_time, watch)

    def move_joints(self, target: np.ndarray, min_time: float = 0.15, watch=None) -> float:
        start = self.q.copy()
        delta = target - start
        duration, ramp = move_duration(delta, min_time)
        steps = max(1, int(math.ceil(duration / TIME_STEP)))
        for i in range(1, steps + 1):
            self.q = start + trapezoid(i / steps, ramp) * delta
            self._hold_arm(self.q)
            self._drive_fingers()
            self.world.step(1)
            if watch is not None and watch():
                return i * TIME_STEP
        return steps * TIME_STEP

    def settle(self, seconds: float) -> None:
        for _ in range(max(1, int(round(seconds / TIME_STEP)))):
            self._hold_arm(self.q)
            self._drive_fingers()
            self.world.step(1)

    def _hold_arm(self, q: np.ndarray) -> None:
        self.p.setJointMotorControlArray(
            self.body,
            ARM_JOINTS,
            self.p.POSITION_CONTROL,
            targetPositions=list(q),
            forces=ARM_FORCES,
            positionGains=[0.3] * 7,
            physicsClientId=self.cid,
        )

    # gripper ------------------------------------------------------------------------------
    def _drive_fingers(self) -> None:
        target = self.grip_target
        if self.world.time < self._grip_lost_until:  # the injected slip: the fingers spring open a little
            target = min(0.04, self._grip_lost_width / 2 + 0.012)
        for j in FINGERS:
            self.p.setJointMotorControl2(
                self.body,
                j,
                self.p.POSITION_CONTROL,
                targetPosition=target,
                force=self.grip_force,
                maxVelocity=FINGER_SPEED,
                physicsClientId=self.cid,
            )

    def lose_grip(self, seconds: float = 0.15) -> None:
        """Fault injection: the gripper loses its grip for a moment (say, a pressure drop), then closes
        again on whatever is still there; the controller only notices through the finger width."""
        self._grip_lost_until = self.world.time + seconds
        self._grip_lost_width = self.width()

    def open(self, width: float = L.GRIPPER_MAX_WIDTH, seconds: float = 0.12) -> float:
        self.grip_target = max(0.0, min(L.GRIPPER_MAX_WIDTH, width)) / 2
        self.grip_force = GRIP_FORCE
        self.settle(seconds)
        return seconds

    def close(self, seconds: float = 0.2) -> float:
        self.grip_target = 0.0
        self.grip_force = GRIP_FORCE
        self.settle(seconds)
        return seconds

    def width(self) -> float:
        """The measured finger opening (the gripper's own encoder)."""
        a = self.p.getJointState(self.body, FINGERS[0], physicsClientId=self.cid)[0]
        b = self.p.getJointState(self.body, FINGERS[1], physicsClientId=self.cid)[0]
        return float(a + b)

    def holding(self) -> bool:
        return self.grip_target == 0.0 and self.width() > EMPTY_WIDTH

    def jammed(self) -> bool:
        """Told to close but the fingers are still fully open: the part is wedged, not held."""
        return self.grip_target == 0.0 and self.width() > L.GRIPPER_MAX_WIDTH - 0.003
