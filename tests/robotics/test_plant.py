"""The cell as a plant runs it, on loopback: OPC UA, MQTT orders through a real broker, restarts,
duplicates and bad input. The stub cell stands in for the robot here (the physics cell has its own
tests), so these check the integration alone."""

from __future__ import annotations

import json
import socket
import time

import pytest

from deepapps_robotics.plant.mqtt_link import COMMANDS_TOPIC, ORDERS_TOPIC
from deepapps_robotics.plant.opcua_server import call_method, endpoint, read_status

from .conftest import CLASSES, wait_for


def order(oid: str, *parts: str) -> str:
    return json.dumps({"order_id": oid, "parts": list(parts)})


def test_opcua_read_and_method_round_trip(stub_service, listener):
    url = endpoint("127.0.0.1", stub_service.o.opcua_port)
    status = read_status(url)
    assert status["state"] == "Running" and isinstance(status["orders_accepted"], int)
    with pytest.raises(Exception, match="BadInvalidState"):
        call_method(url, "StartJob")  # already running: refused...
    wait_for(
        lambda: any("already running" in e["reason"] for e in listener.of("rejected"))
    )  # ...with a reason
    assert "Running -> Idle" in call_method(url, "Stop")
    assert read_status(url)["state"] == "Idle"
    with pytest.raises(Exception, match="BadInvalidState"):
        call_method(url, "Stop")
    assert "Idle -> Running" in call_method(url, "StartJob")
    with pytest.raises(Exception, match="BadInvalidArgument"):
        call_method(url, "InjectFault", "earthquake")
    assert read_status(url)["state"] == "Running"


def test_mqtt_order_through_to_done(stub_service, listener):
    listener.publish(ORDERS_TOPIC, order("T-ONE", "duck", "mug"))
    done = wait_for(lambda: listener.of("done", "T-ONE"))
    assert [i["bin"] for i in done[0]["items"]] == ["duck", "mug"]
    assert len(listener.of("ack", "T-ONE")) == 1
    assert stub_service.store.counters()["items_open"] == 0


def test_duplicate_delivery_is_done_once(stub_service, listener):
    for _ in range(3):
        listener.publish(ORDERS_TOPIC, order("T-DUP", "lego"))
    wait_for(lambda: len(listener.of("ack", "T-DUP")) == 3)
    wait_for(lambda: listener.of("done", "T-DUP"))
    time.sleep(0.5)
    acks = listener.of("ack", "T-DUP")
    assert sum(not a["duplicate"] for a in acks) == 1 and len(listener.of("done", "T-DUP")) == 1
    listener.publish(ORDERS_TOPIC, order("T-DUP", "mug"))  # same id, other content: refused
    wait_for(
        lambda: any(
            e.get("order_id") == "T-DUP" and "different content" in e["reason"]
            for e in listener.of("rejected")
        )
    )
    time.sleep(0.3)  # the refused repeat changed nothing: still one done, with the first content
    assert len(listener.of("done", "T-DUP")) == 1
    assert [i["part"] for i in listener.of("done", "T-DUP")[0]["items"]] == ["lego"]


def test_bad_input_is_rejected_and_nothing_accepted_is_lost(stub_service, listener):
    listener.publish(ORDERS_TOPIC, order("T-GOOD-1", "teddy"))
    for payload in ("not json", order("T-BAD", "banana"), json.dumps({"order_id": "T-X", "part": ["duck"]})):
        listener.publish(ORDERS_TOPIC, payload)
    listener.publish(COMMANDS_TOPIC, json.dumps({"command": "start"}))  # already running
    listener.publish(COMMANDS_TOPIC, json.dumps({"command": "reset"}))  # not while running
    listener.publish(COMMANDS_TOPIC, json.dumps({"command": "fly"}))
    listener.publish(ORDERS_TOPIC, order("T-GOOD-2", "block"))
    wait_for(lambda: listener.of("done", "T-GOOD-1") and listener.of("done", "T-GOOD-2"))
    reasons = " | ".join(e["reason"] for e in listener.of("rejected"))
    for expected in (
        "not JSON",
        "unknown part class(es) banana",
        "unknown field(s) part",
        "StartJob refused: the cell is already running",
        "Reset refused while running",
        "command must be one of",
    ):
        assert expected in reasons


def test_broker_restart_loses_nothing(stub_service, listener):
    from deepapps_robotics.plant.wms import SimulatedWMS

    # the WMS's timed re-send is far off: recovery must come from the reconnect and "online" re-sends
    wms = SimulatedWMS(
        "127.0.0.1", stub_service.o.mqtt_port, CLASSES, rate=40, resend_after=30.0, prefix="RST"
    )
    wms.start()
    assert wms.client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # no Nagle delay
    online_before = len(listener.of("online"))

    def restart_midway(i):
        if i == 10:
            assert stub_service.inject("broker_restart")[0]

    report = wms.run(30, timeout=90, on_progress=restart_midway)
    wms.close()
    assert stub_service.counts["broker_restarts"] >= 1
    assert stub_service.broker_outages[-1] >= stub_service.o.broker_down_s  # the down time was real
    assert report["orders_done"] == 30 and report["orders_lost"] == 0 and report["orders_done_twice"] == 0
    assert report["items_in_ordered_bin"] == report["items"] == 30
    assert report["ack_latency_ms"]["max"] < 15_000  # not waiting for the 30 s re-send
    wait_for(lambda: len(listener.of("online")) > online_before)  # the cell announced it was back
    assert listener.of("online")[-1]["reconnects"] >= 1


def test_cell_restart_mid_order_finishes_every_order_once(stub_service, listener):
    restarts = stub_service.counts["cell_restarts"]
    for k in range(6):
        listener.publish(ORDERS_TOPIC, order(f"T-CR-{k}", "duck", "teddy", "mug"))
    wait_for(lambda: listener.of("ack", "T-CR-5"))
    assert not listener.of("done", "T-CR-5")  # still being worked on...
    assert stub_service.inject("cell_restart")[0]  # ...when the cell dies
    wait_for(lambda: stub_service.counts["cell_restarts"] == restarts + 1)
    wait_for(lambda: all(listener.of("done", f"T-CR-{k}") for k in range(6)), timeout=60)
    assert stub_service.counts["cell_restarts"] == restarts + 1
    for k in range(6):
        (done,) = listener.of("done", f"T-CR-{k}")
        assert done["placed"] == 3 and done["failed"] == 0


def test_each_wms_run_has_its_own_order_ids(stub_service, listener):
    """Two WMS runs on one store with other parts (other seeds) are both served: with shared ids the
    second one's orders would all be refused as reused ids."""
    from deepapps_robotics.plant.session import run_prefix
    from deepapps_robotics.plant.wms import SimulatedWMS

    prefixes = [run_prefix(), run_prefix()]
    assert prefixes[0] != prefixes[1]
    reports = []
    for seed, prefix in zip((1, 2), prefixes, strict=True):
        wms = SimulatedWMS(
            "127.0.0.1",
            stub_service.o.mqtt_port,
            CLASSES,
            seed=seed,
            rate=50,
            resend_after=30.0,
            prefix=prefix,
        )
        wms.start()
        reports.append(wms.run(4, timeout=30))
        wms.close()
    assert [r["orders_done"] for r in reports] == [4, 4]
    assert [r["rejections_received"] for r in reports] == [0, 0]
