"""Robotics fixtures: a running cell service on loopback (embedded broker, stub or physics cell)."""

from __future__ import annotations

import json
import threading
import time

import pytest

CLASSES = ("duck", "teddy", "lego", "soccer_ball", "mug", "block")


def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    """Poll until ``predicate()`` is truthy; its value (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {getattr(predicate, '__name__', predicate)}"
    )


class EventListener:
    """An MQTT client on the events topic that keeps every event (deduplicated by seq)."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        from deepapps_robotics.plant.mqtt_link import tune_client
        from deepapps_robotics.plant.store import EVENTS_TOPIC

        self.events: list[dict] = []
        self._seen: set = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-listener-{port}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(EVENTS_TOPIC, qos=1)
        self.client.on_message = self._on_message
        tune_client(self.client)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        event = json.loads(msg.payload)
        with self._lock:
            if event["seq"] not in self._seen:
                self._seen.add(event["seq"])
                self.events.append(event)

    def of(self, kind: str, order_id: str | None = None) -> list[dict]:
        with self._lock:
            return [
                e
                for e in self.events
                if e["event"] == kind and (order_id is None or e.get("order_id") == order_id)
            ]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(scope="module")
def stub_service(tmp_path_factory):
    """The cell service with the stub cell in a thread, an embedded broker and OPC UA, on free ports."""
    from deepapps_robotics.plant.broker import free_port
    from deepapps_robotics.plant.service import CellService, ServiceOptions

    folder = tmp_path_factory.mktemp("cell")
    options = ServiceOptions(
        db=folder / "cell.db",
        mqtt_port=free_port(),
        opcua_port=free_port(),
        broker="amqtt",
        cell="stub",
        worker="thread",
        broker_down_s=0.5,
        cell_options={"stub_cycle": 1.5, "stub_wall": 0.03},
    )
    service = CellService(options, CLASSES)
    service.start()
    yield service
    service.close()


@pytest.fixture(scope="module")
def listener(stub_service):
    events = EventListener(stub_service.o.mqtt_port)
    wait_for(lambda: events.client.is_connected(), 10)
    time.sleep(0.2)
    yield events
    events.close()
