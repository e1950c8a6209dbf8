"""A simulated warehouse management system: it sends orders over MQTT and checks what comes back.

It behaves like a careful producer: each order is re-sent (same id, same content) until the cell
acknowledges it, and an acknowledged order that stays open is asked about again the same way (the
cell answers a repeat with its current state, and a finished order's results). Every unacknowledged
order is re-sent, and every open one asked about, at once when the WMS reconnects and when the cell
announces itself ``online``: a broker without persistent sessions drops what is published for a
subscriber that is not back yet, and whichever of the two comes back last triggers the re-send that
gets through. So orders survive broker restarts, and the report can say exactly how many were lost,
done twice, or sorted wrong.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .mqtt_link import COMMANDS_TOPIC, ORDERS_TOPIC, tune_client
from .store import EVENTS_TOPIC

BAD_KINDS = ("not_json", "unknown_class", "unknown_field", "reused_id", "bad_id")


@dataclass
class OrderTrack:
    payload: str
    parts: list[str]
    sent: float
    last_sent: float
    sends: int = 1
    acked: float | None = None
    done: float | None = None
    done_seqs: set[int] = field(default_factory=set)
    results: list[dict] | None = None


class SimulatedWMS:
    """``run(n_orders)`` sends orders at ``rate`` per second and returns a report dict."""

    def __init__(
        self,
        host: str,
        port: int,
        classes: tuple[str, ...],
        seed: int = 0,
        rate: float = 20.0,
        parts: tuple[int, int] = (1, 1),
        resend_after: float = 3.0,
        bad_every: int = 0,
        prefix: str = "WMS",
    ) -> None:
        import paho.mqtt.client as mqtt

        self.classes, self.rate, self.parts = classes, rate, parts
        self.rng = np.random.default_rng(seed)
        self.resend_after, self.bad_every, self.prefix = resend_after, bad_every, prefix
        self.orders: dict[str, OrderTrack] = {}
        self.bad_sent: dict[str, int] = {k: 0 for k in BAD_KINDS}
        self.rejections: list[dict] = []
        self.events_seen: set[int] = set()
        self.duplicate_events = 0
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"deepapps-wms-{prefix}", clean_session=False
        )
        tune_client(self.client)
        self.connects = 0
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message
        self.host, self.port = host, port

    def start(self, timeout: float = 10.0) -> None:
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()
        if not self.connected.wait(timeout):
            raise TimeoutError(f"the WMS could not reach the broker at {self.host}:{self.port}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(EVENTS_TOPIC, qos=1)
            self.connects += 1
            self.connected.set()
            if self.connects > 1:
                self.resync()

    # events -------------------------------------------------------------------------------
    def _on_message(self, client, userdata, msg) -> None:
        now = time.perf_counter()
        try:
            event = json.loads(msg.payload)
        except ValueError:
            return
        with self._lock:
            seq = event.get("seq")
            if seq in self.events_seen:
                self.duplicate_events += 1  # the outbox re-sent it: harmless, dropped here
                return
            self.events_seen.add(seq)
            self._apply(event, now)
        if event.get("event") == "online":
            self.resync()

    def _apply(self, event: dict, now: float) -> None:
        kind, oid = event.get("event"), event.get("order_id")
        if kind == "rejected":
            self.rejections.append(event)
            return
        track = self.orders.get(oid)
        if track is None:
            return
        if kind == "ack" and track.acked is None:
            track.acked = now
        if kind == "done" or (kind == "ack" and event.get("state") == "done" and event.get("items")):
            if kind == "done":
                track.done_seqs.add(event["seq"])
            if track.done is None:
                track.done, track.results = now, event.get("items")

    # sending ------------------------------------------------------------------------------
    def order(self, i: int) -> tuple[str, str, list[str]]:
        n = int(self.rng.integers(self.parts[0], self.parts[1] + 1))
        parts = [str(self.classes[int(k)]) for k in self.rng.integers(len(self.classes), size=n)]
        oid = f"{self.prefix}-{i:06d}"
        return oid, json.dumps({"order_id": oid, "parts": parts}), parts

    def send_bad(self, i: int) -> None:
        kind = BAD_KINDS[sum(self.bad_sent.values()) % len(BAD_KINDS)]
        first = next(iter(self.orders), None)
        payload = {
            "not_json": "{'order_id': oops",
            "unknown_class": json.dumps({"order_id": f"{self.prefix}-BAD-{i}", "parts": ["banana"]}),
            "unknown_field": json.dumps({"order_id": f"{self.prefix}-BAD-{i}", "parts": ["duck"], "qty": 3}),
            "reused_id": json.dumps({"order_id": first or f"{self.prefix}-X", "parts": ["duck"] * 7}),
            "bad_id": json.dumps({"order_id": "", "parts": ["duck"]}),
        }[kind]
        if kind == "reused_id" and first is None:
            return
        self.bad_sent[kind] += 1
        self.client.publish(ORDERS_TOPIC, payload, qos=1)

    def command(self, name: str) -> None:
        self.client.publish(COMMANDS_TOPIC, json.dumps({"command": name}), qos=1)

    def run(self, n_orders: int, timeout: float = 3600.0, on_progress=None) -> dict[str, Any]:
        """Send ``n_orders`` (plus the bad messages), wait until all are done or ``timeout``; the report."""
        t0 = time.perf_counter()
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        for i in range(n_orders):
            oid, payload, parts = self.order(i)
            now = time.perf_counter()
            with self._lock:
                self.orders[oid] = OrderTrack(payload, parts, now, now)
            self.client.publish(ORDERS_TOPIC, payload, qos=1)
            if self.bad_every and (i + 1) % self.bad_every == 0:
                self.send_bad(i)
            if on_progress is not None:
                on_progress(i)
            self._resend(time.perf_counter())
            time.sleep(max(0.0, t0 + (i + 1) * interval - time.perf_counter()))
        while time.perf_counter() - t0 < timeout and not self.finished():
            self._resend(time.perf_counter())
            time.sleep(0.1)
        return self.report(time.perf_counter() - t0)

    def _resend(self, now: float) -> None:
        """Repeat any order not yet acknowledged, or acknowledged but open for long (idempotent ids)."""
        with self._lock:
            stale = [
                t
                for t in self.orders.values()
                if t.done is None
                and (
                    now - t.last_sent
                    > (self.resend_after if t.acked is None else max(30.0, 10 * self.resend_after))
                )
            ]
        for t in stale:
            t.last_sent, t.sends = now, t.sends + 1
            self.client.publish(ORDERS_TOPIC, t.payload, qos=1)

    def resync(self) -> None:
        """After a reconnect (the WMS's or the cell's): repeat every order not acknowledged yet, then ask
        again about every acknowledged one still open, whose ``done`` may have gone to nobody."""
        now = time.perf_counter()
        with self._lock:
            waiting = sorted(
                (t for t in self.orders.values() if t.done is None), key=lambda t: t.acked is not None
            )
            for t in waiting:
                t.last_sent, t.sends = now, t.sends + 1
        for t in waiting:
            self.client.publish(ORDERS_TOPIC, t.payload, qos=1)

    def finished(self) -> bool:
        with self._lock:
            return all(t.done is not None for t in self.orders.values())

    def report(self, seconds: float) -> dict[str, Any]:
        with self._lock:
            tracks = list(self.orders.values())
            rejections = list(self.rejections)
        latencies = sorted((t.acked - t.sent) * 1e3 for t in tracks if t.acked is not None)
        done = [t for t in tracks if t.done is not None]
        items = [(p, r) for t in done for p, r in zip(t.parts, t.results or [], strict=False)]
        right = sum(r.get("state") == "placed" and r.get("bin") == p for p, r in items)
        return {
            "orders_sent": len(tracks),
            "orders_acked": sum(t.acked is not None for t in tracks),
            "orders_done": len(done),
            "orders_lost": len(tracks) - len(done),
            "orders_done_twice": sum(len(t.done_seqs) > 1 for t in tracks),
            "orders_resent": sum(t.sends > 1 for t in tracks),
            "items": len(items),
            "items_failed": sum(r.get("state") == "failed" for _, r in items),
            "items_in_ordered_bin": right,
            "ack_latency_ms": _percentiles(latencies),
            "bad_messages_sent": sum(self.bad_sent.values()),
            "bad_messages_by_kind": dict(self.bad_sent),
            "rejections_received": len(rejections),
            "rejection_reasons": sorted({r.get("reason", "") for r in rejections})[:10],
            "duplicate_events_dropped": self.duplicate_events,
            "seconds": round(seconds, 2),
        }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    pick = lambda q: round(float(np.percentile(values, q)), 2)  # noqa: E731
    return {
        "p50": pick(50),
        "p95": pick(95),
        "p99": pick(99),
        "max": round(max(values), 2),
        "mean": round(statistics.fmean(values), 2),
        "n": len(values),
    }
