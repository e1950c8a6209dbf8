"""The cell controller: conveyor tracking, vision-guided picks and class-sorted places.

It sees the cell only as a plant controller would: the belt encoder, the camera (through the
object-detection task and the depth buffer), the arm's joints and the gripper's finger width.
Items are tracked along the belt from the feeder by the encoder; when the front item reaches
the pick point the belt halts, one frame is taken, the detection nearest the tracked position
is grasped from above, and the part goes to the bin of the class the detector gave it. While
the arm is over the bins (out of the camera's view) the next part is already being looked at.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import layout as L
from .perception import Grasp, Perception
from .robot import FINGERS, IKError, PandaArm
from .world import CellWorld

FEED_Y = L.BELT_Y_FEED - 0.08
PICK_Y = 0.0
TRACK_TOLERANCE = 0.09  # a detection this close (along the belt) to a tracked item is that item
LIFT = 0.08


@dataclass
class CellConfig:
    """How the cell runs (declared as task options in ``plugin.py``)."""

    belt_speed: float = 0.25  # m/s
    arrival_rate: float = 24.0  # parts per minute the feeder inducts at most
    conf: float = 0.3  # detection confidence threshold
    perception_ms: float = 60.0  # simulated time charged per frame + detection
    max_attempts: int = 3  # grasp attempts per presentation
    max_passes: int = 3  # presentations (recirculations) before an item is given up
    camera_retries: int = 8  # frames retried when the camera drops out
    dimension_check: bool = True  # class candidates checked against the parts' master-data dimensions


@dataclass
class CellEvent:
    """Something the cell did: ``kind`` is fed, placed, slip, regrasp, skipped, missed, failed,
    camera_dropout, camera_fault or scored (truth, for scoring only)."""

    kind: str
    item: str | None
    time: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "item": self.item, "time": round(self.time, 3), **self.data}


@dataclass
class Tracked:
    """An item on the belt as the controller knows it: where the encoder says it is."""

    item: str
    fed_travel: float  # encoder reading when the feeder dropped it
    passes: int = 1
    offset: float = 0.0  # correction after a slip (metres along the belt)
    skipped: bool = False  # not picked in its presentation: it rides on to the reject chute
    held: bool = False  # in the gripper: off the belt, so the encoder no longer moves it

    def y(self, travel: float) -> float:
        return FEED_Y - (travel - self.fed_travel) + self.offset


class CellController:
    """Runs the cell: ``submit`` items, then ``work`` advances it and returns what happened."""

    def __init__(self, world: CellWorld, arm: PandaArm, perception: Perception, config: CellConfig) -> None:
        self.world, self.arm, self.perception, self.config = world, arm, perception, config
        self.queue: deque[tuple[str, str, int]] = deque()  # (item, class for the feeder, passes)
        self.tracked: list[Tracked] = []
        self.events: list[CellEvent] = []
        self.last_feed = -1e9
        self.fault: str | None = None
        self.perception_wall_ms: list[float] = []
        self.cycle_times: list[float] = []
        self.last_grasp: Grasp | None = None
        self.last_frame = None
        self._feeder_class: dict[str, str] = {}
        self._cycle_start = 0.0
        self._ready: tuple[Tracked, Grasp] | None = None  # the next grasp, located while placing
        self.hold = False  # a stop was requested: feed nothing new, finish what is on the belt
        world.hooks.append((8, self._scan))

    # input --------------------------------------------------------------------------------
    def submit(self, item: str, cls: str, passes: int = 1) -> None:
        """Queue an item for the feeder. ``cls`` tells the *simulated upstream* which part to drop;
        the controller never uses it to sort."""
        self._feeder_class[item] = cls
        self.queue.append((item, cls, passes))

    @property
    def busy(self) -> bool:
        return bool(self.tracked or (self.queue and not self.hold))

    def _emit(self, kind: str, item: str | None, **data: Any) -> None:
        self.events.append(CellEvent(kind, item, self.world.time, data))

    def _front(self, exclude: Tracked | None = None) -> Tracked | None:
        return next((t for t in self.tracked if not (t.skipped or t.held) and t is not exclude), None)

    # main loop ----------------------------------------------------------------------------
    def work(self, seconds: float) -> list[CellEvent]:
        """Advance up to ``seconds`` of simulated time (less when idle or faulted); return new events."""
        end = self.world.time + seconds
        while self.world.time < end and self.fault is None:
            if not self.busy:
                if self.world._released:  # let the last part land before going idle
                    self.world.run_for(0.1)
                    continue
                break
            front = self._front()
            if front is not None and front.y(self.world.belt_travel) <= PICK_Y + 1e-3:
                self.world.belt_on = False
                self._present(front)
                continue
            self._run_belt()
            self.world.step(8)
        events, self.events = self.events, []
        return events

    def _run_belt(self, exclude: Tracked | None = None) -> None:
        """Run the belt, set to halt by itself when the next item reaches the pick point."""
        front = self._front(exclude)
        travel = self.world.belt_travel
        self.world.belt_stop_at = travel + front.y(travel) - PICK_Y if front is not None else None
        self.world.belt_on = front is None or front.y(travel) > PICK_Y

    def _scan(self) -> None:
        """The periodic scan (every few physics steps): feeder, end-of-belt eye, landed parts."""
        self._feed()
        self._check_passed()
        for score in self.world.settled_scores():
            self._emit("scored", score["item"], **{k: v for k, v in score.items() if k != "item"})

    def _feed(self) -> None:
        min_gap = 60.0 / self.config.arrival_rate
        if (
            self.hold
            or not self.queue
            or self.world.time - self.last_feed < min_gap
            or not self.world.feed_clear()
        ):
            return
        item, cls, passes = self.queue.popleft()
        self.world.feed(cls, item)
        self.tracked.append(Tracked(item, self.world.belt_travel, passes))
        self.last_feed = self.world.time
        self._emit("fed", item, passes=passes)

    def _check_passed(self) -> None:
        """Items whose tracked position ran past the belt's end went down the reject chute."""
        for t in list(self.tracked):
            if not t.held and t.y(self.world.belt_travel) < L.BELT_Y_END - 0.05:
                self.tracked.remove(t)
                self._recirculate(t, "passed the pick window")

    def _recirculate(self, t: Tracked, why: str) -> None:
        if t.passes >= self.config.max_passes:
            self._emit("failed", t.item, reason=f"{why} ({t.passes} presentations)")
            return
        self._emit("missed", t.item, reason=why, passes=t.passes)
        # the simulated reject chute returns the same part to the feeder
        self.queue.appendleft((t.item, self._feeder_class.get(t.item, ""), t.passes + 1))

    # one presentation: look, grasp, place -------------------------------------------------
    def _present(self, t: Tracked) -> None:
        """The front item is at the pick point and the belt has stopped: pick it (a few tries)."""
        self._cycle_start = self.world.time
        ready, self._ready = self._ready, None
        for attempt in range(self.config.max_attempts):
            grasp = ready[1] if (attempt == 0 and ready and ready[0] is t) else self._locate(t)
            if grasp is None:
                break
            try:
                outcome = self._pick(t, grasp)
            except IKError as exc:  # a detection the arm cannot reach (say, a part against the rail)
                self._emit("regrasp", t.item, reason=f"unreachable: {exc}", cls=grasp.cls)
                self.arm.move_to(L.HOME, 0.0, min_time=0.2)
                outcome = "unreachable"
            if outcome == "placed":
                return
            if outcome == "dropped" or self.fault is not None:
                return
        if self.fault is None:
            t.skipped = True  # let it ride on: the reject chute brings it round again
            self._emit("skipped", t.item, reason="no grasp succeeded in this presentation")
            self.arm.move_to(L.HOME, 0.0, min_time=0.2)

    def _frame(self):
        """A camera frame, retrying through dropouts; None (and a camera fault) when it stays dark."""
        for attempt in range(self.config.camera_retries + 1):
            frame = self.world.camera()
            if frame is not None:
                if attempt:
                    self._emit("camera_dropout", None, frames=attempt, recovered=True)
                return frame
            self.world.run_for(0.05)
        self.fault = f"camera: no frame after {self.config.camera_retries + 1} tries"
        self._emit("camera_fault", None, reason=self.fault)
        return None

    def _locate(self, t: Tracked) -> Grasp | None:
        """Look at the pick window; the grasp for the detection nearest to where ``t`` should be."""
        frame = self._frame()
        if frame is None:
            return None
        t0 = time.perf_counter()
        grasps = self.perception.grasps(frame)
        self.perception_wall_ms.append((time.perf_counter() - t0) * 1e3)
        self.last_frame = frame
        self.world.run_for(self.config.perception_ms / 1e3)
        expected = t.y(self.world.belt_travel)
        near = [g for g in grasps if abs(g.y - expected) <= TRACK_TOLERANCE]
        if not near:
            return None
        grasp = min(near, key=lambda g: (abs(g.y - expected), -g.conf))
        self.last_grasp = grasp
        return grasp

    def _pick(self, t: Tracked, g: Grasp) -> str:
        """Grasp, lift (watching for a slip), carry to the class's bin, release; look at the next part."""
        arm, world = self.arm, self.world
        arm.open(seconds=0.0)
        arm.move_to((g.x, g.y, g.z + L.APPROACH_HEIGHT), g.yaw, min_time=0.2)
        arm.move_to((g.x, g.y, g.z), g.yaw, min_time=0.15)
        arm.close(seconds=0.18)
        if not arm.holding() or arm.jammed():
            why = "the part is wedged in the open fingers" if arm.jammed() else "nothing between the fingers"
            arm.open(seconds=0.05)
            arm.move_to((g.x, g.y, g.z + L.APPROACH_HEIGHT), g.yaw, min_time=0.15)
            self._emit("regrasp", t.item, reason=why, cls=g.cls)
            return "empty"
        if self._lift_and_carry(t, g):
            return self._after_slip(t, g)
        world.note_release(world.robot, FINGERS, t.item, g.cls)
        arm.open(seconds=0.1)
        if t in self.tracked:
            self.tracked.remove(t)
        cycle = world.time - self._cycle_start
        self.cycle_times.append(cycle)
        self._emit(
            "placed",
            t.item,
            cls=g.cls,
            bin=g.cls,
            conf=round(g.conf, 3),
            cycle_s=round(cycle, 3),
            passes=t.passes,
        )
        self._look_ahead()
        return "placed"

    def _lift_and_carry(self, t: Tracked, g: Grasp) -> bool:
        """Lift and carry to the bin; True if the gripper lost the part on the way."""
        arm, world = self.arm, self.world
        lost = lambda: not arm.holding()  # noqa: E731  (the gripper's own width sensor)
        if world.slip_armed:
            world.slip_armed = False
            arm.move_to((g.x, g.y, g.z + 0.03), g.yaw, min_time=0.1)
            arm.lose_grip()
        arm.move_to((g.x, g.y, g.z + LIFT), g.yaw, min_time=0.15, watch=lost)
        if lost():
            return True
        t.held = True  # clear of the belt: it no longer moves with the encoder
        self._run_belt(exclude=t)  # bring the next one
        target = world.bins[g.cls]
        arm.move_to((target.x, target.y, L.BIN_RELEASE_HEIGHT), 0.0, watch=lost)
        return lost()

    def _look_ahead(self) -> None:
        """From the bin (out of the camera's view): if the next part waits at the pick point, locate
        it now and go straight there; else wait at the ready pose."""
        nxt = self._front()
        if nxt is not None and nxt.y(self.world.belt_travel) <= PICK_Y + 1e-3 and not self.world.belt_on:
            grasp = self._locate(nxt)
            if grasp is not None:
                self._ready = (nxt, grasp)
                return
        self.arm.move_to(L.HOME, 0.0, min_time=0.2)

    def _after_slip(self, t: Tracked, g: Grasp) -> str:
        """The part slipped: stop the belt, let it come to rest, and look for it again."""
        world, arm = self.world, self.arm
        world.belt_on = False
        t.held = False
        x, y, _ = arm.ee_position()
        arm.open(seconds=0.05)
        arm.move_to(L.HOME, 0.0, min_time=0.2)
        self._emit("slip", t.item, cls=g.cls, where=[round(float(x), 3), round(float(y), 3)])
        on_belt = abs(x - L.BELT_X) < L.BELT_HALF_WIDTH and L.BELT_Y_END < y < L.BELT_Y_FEED
        if on_belt:
            t.offset += y - t.y(world.belt_travel)  # it lies where it fell
            return "slipped"
        if t in self.tracked:
            self.tracked.remove(t)
        for body in world.loose_parts():  # an operator takes it off the floor and re-inducts it
            world.remove(body)
        self._recirculate(t, "dropped off the belt")
        return "dropped"
