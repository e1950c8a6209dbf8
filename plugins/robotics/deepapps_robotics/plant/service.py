"""The cell service: what ``deepapps robot cell run`` starts.

It joins the order store, the MQTT broker and client, the OPC UA server and the cell worker, and
runs the cell's state machine (Idle -> Running -> Idle, Fault -> Reset -> Idle). Orders are
accepted in any state and wait in the store; the cell takes them while Running. Every refusal
(a malformed order, an unknown part class, a reused order id, a command in the wrong state, an
unknown fault) is published on the events topic with its reason.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepapps.errors import DeepAppsError

from .broker import make_broker
from .messages import Rejected, parse_command, parse_order
from .store import OrderStore
from .worker import CELL_FAULTS, CellLink

FAULTS = ("broker_restart", "gripper_slip", "camera_dropout", "cell_restart")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServiceOptions:
    db: Path
    host: str = "127.0.0.1"
    mqtt_port: int = 1883
    opcua_port: int = 4840
    broker: str = "amqtt"
    cell: str = "physics"
    worker: str = "process"
    autostart: bool = True
    opcua: bool = True
    in_flight: int = 3  # items handed to the cell ahead of the one being picked
    broker_down_s: float = 1.0
    ready_timeout: float = 600.0
    cell_options: dict[str, Any] = field(default_factory=dict)


class CellService:
    """``start()``, then orders flow; ``snapshot()`` is the live state; ``close()`` stops everything."""

    def __init__(self, options: ServiceOptions, classes: tuple[str, ...]) -> None:
        self.o = options
        self.classes = classes
        self.store = OrderStore(options.db)
        self.broker = None
        self.mqtt = None
        self.opcua = None
        self.io = None
        self.link: CellLink | None = None
        self.cell_info: dict[str, Any] = {}
        self.cell_status: dict[str, Any] = {}
        self.last_frame: dict[str, Any] | None = None
        self.counts = {
            "rejections": 0,
            "slips": 0,
            "camera_dropouts": 0,
            "cell_restarts": 0,
            "broker_restarts": 0,
        }
        self.cycles: deque[float] = deque(maxlen=200)
        self.place_times: deque[float] = deque(maxlen=100)
        self.broker_outages: list[float] = []  # seconds, one per injected broker restart
        self._lock = threading.RLock()
        self._outstanding: set[str] = set()
        self._restart_reason: str | None = None
        self._closing = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, name="deepapps-cell-supervisor", daemon=True
        )

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        from .mqtt_link import CellMqtt

        requeued = self.store.requeue_submitted()  # the last run ended with these in the cell's hands
        if self.store.get("state") is None:
            self.store.set_state("Idle", "", event=False)
        elif self.store.get("state") == "Running":
            self.store.emit("resumed", requeued=requeued)
        if self.o.broker != "none":
            self.broker = make_broker(self.o.broker, self.o.host, self.o.mqtt_port)
            self.broker.start()
            self.mqtt = CellMqtt(self.o.host, self.o.mqtt_port, self.store, self.on_order, self.on_command)
            self.mqtt.start()
        if self.o.opcua:
            from .aio import LoopThread
            from .opcua_server import CellOpcUa

            self.io = LoopThread()
            self.opcua = CellOpcUa(self, self.o.host, self.o.opcua_port, self.io)
            self.opcua.start()
        self._start_cell()
        self._supervisor.start()
        if self.o.autostart and self.state == "Idle":
            self.command("start", source="autostart")

    def close(self) -> None:
        self._closing.set()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=10)
        for stop in (
            getattr(self.link, "close", None),
            getattr(self.mqtt, "close", None),
            getattr(self.opcua, "stop", None),
            getattr(self.io, "close", None),
            getattr(self.broker, "close", None),
        ):
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()
        self.store.close()

    def _start_cell(self) -> None:
        self.link = CellLink({**self.o.cell_options, "cell": self.o.cell}, mode=self.o.worker)
        deadline = time.monotonic() + self.o.ready_timeout
        while time.monotonic() < deadline:
            msg = self.link.recv(0.5)
            if msg is None:
                continue
            if msg[0] == "ready":
                self.cell_info = msg[1]
                if self.state == "Running":
                    self.link.send("release")
                else:
                    self.link.send("hold")
                return
            if msg[0] in ("error", "dead"):
                raise DeepAppsError(f"the cell could not start: {msg[1] if len(msg) > 1 else 'worker died'}")
        raise DeepAppsError(f"the cell did not report ready within {self.o.ready_timeout:.0f} s")

    # plant messages -----------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.store.get("state", "Idle") or "Idle"

    def on_order(self, payload: bytes) -> None:
        try:
            order = parse_order(payload, self.classes)
            self.store.accept(order)
        except Rejected as exc:
            self._reject(exc.reason, exc.order_id, "order")

    def on_command(self, payload: bytes) -> None:
        try:
            self.command(parse_command(payload), source="mqtt")
        except Rejected as exc:
            self._reject(exc.reason, None, "command")

    def _reject(self, reason: str, order_id: str | None, kind: str) -> None:
        with self._lock:
            self.counts["rejections"] += 1
        self.store.reject(reason, order_id, kind)

    def command(self, name: str, source: str = "api") -> tuple[bool, str]:
        """start | stop | reset. Returns (accepted, reason); a refusal is also published."""
        with self._lock:
            state = self.state
            refusal = _refusal(name, state)
            if refusal:
                self._reject(refusal, None, "command")
                return False, refusal
            new = {"start": "Running", "stop": "Idle", "reset": "Idle"}[name]
            self.store.set_state(new, "" if name == "reset" else None)
            if self.link is not None:
                self.link.send("release" if name == "start" else "hold")
                if name == "reset":
                    self.link.send("reset")
        return True, f"{name} accepted ({source}): {state} -> {new}"

    def inject(self, fault: str, source: str = "api", arg: Any = None) -> tuple[bool, str]:
        """Inject one of :data:`FAULTS`; returns (accepted, what happens)."""
        if fault not in FAULTS:
            reason = f"unknown fault {fault!r}; use one of {', '.join(FAULTS)}"
            self._reject(reason, None, "inject")
            return False, reason
        self.store.emit("fault_injected", fault=fault, source=source)
        if fault == "broker_restart":
            if self.broker is None or self.broker.kind == "external":
                reason = "the broker is not run by this cell; restart it where it runs"
                self._reject(reason, None, "inject")
                return False, reason
            threading.Thread(target=self._restart_broker, daemon=True).start()
            return True, f"broker going down for {self.o.broker_down_s:g} s"
        if fault == "cell_restart":
            self._restart_reason = f"injected by {source}"
            return True, "the cell is being killed and restarted"
        if fault in CELL_FAULTS and self.link is not None:
            self.link.send("inject", fault, arg)
        return True, f"{fault} armed"

    def _restart_broker(self) -> None:
        with self._lock:
            self.counts["broker_restarts"] += 1
        began = time.perf_counter()
        self.broker.restart(self.o.broker_down_s)
        with self._lock:  # stop called to listening again: what the clients saw
            self.broker_outages.append(round(time.perf_counter() - began, 3))

    # supervision --------------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._closing.is_set():
            if self._restart_reason is not None or (self.link is not None and not self.link.alive()):
                self._restart_cell(self._restart_reason or "the cell process died")
                continue
            msg = self.link.recv(0.05)
            if msg is not None:
                self._on_cell(msg)
            self._top_up()

    def _restart_cell(self, reason: str) -> None:
        self._restart_reason = None
        self.link.kill()
        with self._lock:
            self.counts["cell_restarts"] += 1
            self._outstanding.clear()
            self.place_times.clear()  # the new cell's clock starts again at zero
        requeued = self.store.requeue_submitted()
        self.store.emit("cell_restart", reason=reason, requeued=requeued)
        self._start_cell()

    def _top_up(self) -> None:
        if self.state != "Running":
            return
        with self._lock:
            room = self.o.in_flight - len(self._outstanding)
        for item, cls in self.store.next_items(room):
            with self._lock:
                self._outstanding.add(item)
            self.link.send("submit", item, cls)

    def _on_cell(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "event":
            self._on_event(msg[1])
        elif kind == "status":
            self.cell_status = msg[1]
        elif kind == "frame":
            self.last_frame = msg[1]
        elif kind == "dead":
            self._restart_reason = "the cell's link broke"

    def _on_event(self, e: dict[str, Any]) -> None:
        kind, item = e["kind"], e.get("item")
        if kind == "placed":
            self.store.item_placed(item, e["bin"], e.get("conf"), e.get("cycle_s"))
            with self._lock:
                self._outstanding.discard(item)
                self.cycles.append(float(e.get("cycle_s") or 0.0))
                self.place_times.append(float(e["time"]))
        elif kind == "failed":
            self.store.item_failed(item, e.get("reason", ""))
            with self._lock:
                self._outstanding.discard(item)
        elif kind == "scored":
            self.store.record_score(e["part_item"], e["true_class"], e.get("bin"))
        elif kind == "camera_fault":
            self.store.set_state("Fault", e.get("reason", "camera fault"))
        elif kind in ("slip", "camera_dropout", "missed", "skipped"):
            key = {"slip": "slips", "camera_dropout": "camera_dropouts"}.get(kind)
            if key:
                with self._lock:
                    self.counts[key] += 1
            self.store.emit(kind, **{k: v for k, v in e.items() if k != "kind"})

    # reading ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        counters = self.store.counters()
        with self._lock:
            cycles = list(self.cycles)
            times = list(self.place_times)
            counts = dict(self.counts)
            outages = list(self.broker_outages)
        pph = (
            3600.0 * (len(times) - 1) / (times[-1] - times[0])
            if len(times) > 1 and times[-1] > times[0]
            else 0.0
        )
        return {
            "state": self.state,
            "last_error": self.store.get("last_error", "") or "",
            **counters,
            **counts,
            "cycle_time_last": cycles[-1] if cycles else 0.0,
            "cycle_time_mean": round(statistics.fmean(cycles), 3) if cycles else 0.0,
            "picks_per_hour": round(pph, 1),
            "real_time_factor": float(self.cell_status.get("real_time_factor") or 0.0),
            "sim_time": self.cell_status.get("sim_time", 0.0),
            "cell": self.cell_info.get("cell", self.o.cell),
            "detector": self.cell_info.get("detector"),
            "broker": self.o.broker,
            "broker_outages_s": outages,
            "mqtt": f"{self.o.host}:{self.o.mqtt_port}",
            "opcua": f"opc.tcp://{self.o.host}:{self.o.opcua_port}/deepapps/cell/" if self.o.opcua else None,
        }


def _refusal(command: str, state: str) -> str | None:
    """Why ``command`` is refused in ``state`` (None: allowed)."""
    if command == "start" and state == "Running":
        return "StartJob refused: the cell is already running"
    if command == "start" and state == "Fault":
        return "StartJob refused: the cell is in Fault; Reset it first"
    if command == "stop" and state != "Running":
        return f"Stop refused: the cell is not running (state {state})"
    if command == "reset" and state == "Running":
        return "Reset refused while running; Stop first"
    return None


def check_bind(host: str, allow_remote: bool) -> None:
    """The broker and OPC UA server have no authentication: loopback unless explicitly allowed."""
    if host not in LOOPBACK and not allow_remote:
        raise DeepAppsError(
            f"refusing to bind {host}: the MQTT broker and the OPC UA server have no "
            "authentication; bind 127.0.0.1, or pass --allow-remote on a network you trust"
        )
