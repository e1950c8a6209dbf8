"""The cell hardware side, run as a child process (default) or a thread, behind one message pipe.

The plant side (``service.py``) sends ``("submit", item, class)``, ``("inject", fault, arg)``,
``("hold",)``, ``("release",)``, ``("reset",)`` and ``("quit",)``; the cell answers ``("ready", info)``,
``("event", dict)``, ``("status", dict)`` and ``("frame", dict)``. Killing the child is the
"cell restart" fault: whatever it had in hand is lost, and the plant side re-submits what the
store says is unfinished.

``physics`` runs the real cell (pybullet + the detector); ``stub`` is a stand-in that "places"
every item in its ordered class's bin after a fixed cycle, for testing the integration alone.
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from typing import Any

CELL_FAULTS = ("gripper_slip", "camera_dropout")
FRAME_EVERY = 0.5  # wall seconds between camera frames sent to the plant side (for the UI)


def run_worker(conn, options: dict[str, Any], abort: threading.Event | None = None) -> None:
    """Entry point of the worker (process target or thread target)."""
    kind = options.get("cell", "physics")
    try:
        cell = PhysicsCell(options) if kind == "physics" else StubCell(options)
    except Exception as exc:  # report why the cell could not start, then end
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", cell.info()))
    _loop(conn, cell, abort)


def _loop(conn, cell, abort: threading.Event | None) -> None:
    last_status = 0.0
    while abort is None or not abort.is_set():
        while conn.poll():
            msg = conn.recv()
            if msg[0] == "quit":
                return
            cell.handle(msg)
        if cell.busy():
            events = cell.work()
        else:
            conn.poll(0.05)
            events = []
        if abort is not None and abort.is_set():
            return  # an abrupt stop: what happened in this slice is lost, as in a crash
        for event in events:
            conn.send(("event", event))
        now = time.monotonic()
        if now - last_status > 0.25:
            conn.send(("status", cell.status()))
            frame = cell.frame()
            if frame is not None:
                conn.send(("frame", frame))
            last_status = now


def detector_threads() -> int:
    """torch threads for the detector of a cell on a plant network: ``DEEPAPPS_THREADS`` if set, else
    one core fewer than usable. With every core, each look kept the broker, the order store and the
    WMS off the CPU (on 2 cores: order-to-ack p95 56-70 ms against 31 ms with one thread)."""
    import os

    from deepapps.runtime.threads import thread_count, usable_cores

    if os.environ.get("DEEPAPPS_THREADS", "").strip().isdigit():
        return thread_count()
    return max(1, usable_cores() - 1)


class PhysicsCell:
    """The real cell: world + arm + perception (object-detection through the registry) + controller."""

    def __init__(self, options: dict[str, Any]) -> None:
        from deepapps.runtime.threads import set_threads

        from ..cell.build import build_cell

        self.cell = build_cell(options)
        set_threads(detector_threads())
        self.controller = self.cell.controller
        self.world = self.cell.world
        self.wall0 = time.perf_counter()
        self.sim0 = self.world.time
        self.want_frames = bool(options.get("frames", False))
        self._last_frame_id = None
        self._last_frame_sent = 0.0
        self.hold = False

    def info(self) -> dict[str, Any]:
        return {"cell": "physics", "detector": self.cell.detector_name, "classes": list(self.world.classes)}

    def handle(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "submit":
            self.controller.submit(msg[1], msg[2])
        elif kind == "inject":
            if msg[1] == "gripper_slip":
                self.world.slip_armed = True
            elif msg[1] == "camera_dropout":
                self.world.camera_dropout += int(msg[2] or 3)
        elif kind == "hold":
            self.controller.hold = True
        elif kind == "release":
            self.controller.hold = False
        elif kind == "reset":
            self.controller.fault = None

    def busy(self) -> bool:
        return self.controller.fault is None and (self.controller.busy or bool(self.world._released))

    def work(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.controller.work(0.5)]

    def status(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall0
        sim = self.world.time - self.sim0
        return {
            "sim_time": round(self.world.time, 2),
            "real_time_factor": round(sim / wall, 3) if wall else 0.0,
            "fault": self.controller.fault,
            "tracked": len(self.controller.tracked),
            "queued": len(self.controller.queue),
        }

    def frame(self) -> dict[str, Any] | None:
        frame = self.controller.last_frame
        now = time.monotonic()
        if (
            not self.want_frames
            or frame is None
            or frame is self._last_frame_id
            or now - self._last_frame_sent < FRAME_EVERY
        ):
            return None
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(frame.rgb).save(buf, format="PNG")
        self._last_frame_id, self._last_frame_sent = frame, now
        grasps = [g.to_dict() for g in self.cell.perception.last_detections]
        return {"png": buf.getvalue(), "time": round(frame.time, 2), "grasps": grasps}


class StubCell:
    """A stand-in cell for integration tests: each item is 'placed' in its ordered class's bin after
    ``stub_cycle`` simulated seconds (no physics, no vision). Faults behave like the real ones from
    the plant's point of view: a slip costs one retry, a camera dropout a short pause."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.cycle = float(options.get("stub_cycle", 0.0))
        self.pace = float(options.get("stub_wall", 0.0))  # wall seconds per item (0: as fast as possible)
        self.queue: deque[tuple[str, str]] = deque()
        self.time = 0.0
        self.slip = 0
        self.dropout = 0
        self.hold = False
        self.placed = 0

    def info(self) -> dict[str, Any]:
        return {"cell": "stub", "detector": None}

    def handle(self, msg: tuple) -> None:
        if msg[0] == "submit":
            self.queue.append((msg[1], msg[2]))
        elif msg[0] == "inject":
            if msg[1] == "gripper_slip":
                self.slip += 1
            elif msg[1] == "camera_dropout":
                self.dropout += int(msg[2] or 3)
        elif msg[0] in ("hold", "release"):
            self.hold = msg[0] == "hold"

    def busy(self) -> bool:
        return bool(self.queue)

    def work(self) -> list[dict[str, Any]]:
        events = []
        for _ in range(min(len(self.queue), 1 if self.pace else 20)):
            time.sleep(self.pace)
            item, cls = self.queue.popleft()
            if self.dropout:
                events.append(
                    {
                        "kind": "camera_dropout",
                        "item": None,
                        "time": self.time,
                        "frames": self.dropout,
                        "recovered": True,
                    }
                )
                self.dropout = 0
            if self.slip:
                self.slip -= 1
                events.append({"kind": "slip", "item": item, "time": self.time, "cls": cls})
            self.time += self.cycle
            events.append(
                {
                    "kind": "placed",
                    "item": item,
                    "time": self.time,
                    "cls": cls,
                    "bin": cls,
                    "conf": 1.0,
                    "cycle_s": self.cycle,
                    "passes": 1,
                }
            )
            events.append(
                {
                    "kind": "scored",
                    "item": item,
                    "time": self.time,
                    "part_item": item,
                    "true_class": cls,
                    "claimed_bin": cls,
                    "bin": cls,
                }
            )
        return events

    def status(self) -> dict[str, Any]:
        return {
            "sim_time": round(self.time, 2),
            "real_time_factor": 0.0,
            "fault": None,
            "tracked": 0,
            "queued": len(self.queue),
        }

    def frame(self) -> None:
        return None


class CellLink:
    """Starts the worker (``process`` or ``thread``) and carries messages; ``kill`` is an abrupt stop."""

    def __init__(self, options: dict[str, Any], mode: str = "process") -> None:
        import multiprocessing as mp

        self.options, self.mode = options, mode
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self._abort = threading.Event()
        self._send_lock = threading.Lock()
        if mode == "process":
            self.proc = ctx.Process(
                target=run_worker, args=(child, options), name="deepapps-cell", daemon=True
            )
        else:
            self.proc = threading.Thread(
                target=run_worker, args=(child, options, self._abort), name="deepapps-cell", daemon=True
            )
        self.proc.start()

    def send(self, *msg: Any) -> bool:
        try:
            with self._send_lock:
                self.conn.send(msg)
            return True
        except (OSError, EOFError, BrokenPipeError):
            return False

    def recv(self, timeout: float) -> tuple | None:
        try:
            if self.conn.poll(timeout):
                return self.conn.recv()
        except (OSError, EOFError):
            return ("dead",)
        return None

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        """Stop the cell abruptly (no goodbye): a crash, as far as the plant side can tell."""
        if self.mode == "process":
            self.proc.kill()
            self.proc.join(timeout=10)
        else:
            self._abort.set()
            self.proc.join(timeout=30)
        self.conn.close()

    def close(self) -> None:
        if self.alive():
            self.send("quit")
            self.proc.join(timeout=10)
            if self.alive():
                self.kill()
                return
        self.conn.close()
