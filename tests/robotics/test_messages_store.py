"""Order messages are parsed strictly; the store handles each order id exactly once."""

from __future__ import annotations

import json

import pytest

from deepapps_robotics.plant.messages import Rejected, parse_command, parse_order
from deepapps_robotics.plant.store import OrderStore

CLASSES = ("duck", "teddy", "lego", "soccer_ball", "mug", "block")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{'order_id': 1", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (json.dumps({"order_id": "", "parts": ["duck"]}), "order_id must be"),
        (json.dumps({"order_id": "A 1", "parts": ["duck"]}), "order_id must be"),
        (json.dumps({"order_id": "A1", "parts": []}), "parts must be a list"),
        (json.dumps({"order_id": "A1", "parts": ["duck", "banana"]}), "unknown part class(es) banana"),
        (json.dumps({"order_id": "A1", "parts": ["duck"], "qty": 2}), "unknown field(s) qty"),
        (b"\xff\xfe", "not JSON"),
        (b"x" * 20_000, "over the 16384-byte limit"),
    ],
)
def test_bad_orders_are_rejected_with_a_reason(payload, reason):
    with pytest.raises(Rejected) as info:
        parse_order(payload, CLASSES)
    assert reason in info.value.reason


def test_good_order_and_commands():
    order = parse_order(json.dumps({"order_id": "WMS-1", "parts": ["duck", "mug"]}), CLASSES)
    assert order.parts == ("duck", "mug") and len(order.digest) == 16
    assert parse_command(b'{"command": "stop"}') == "stop"
    with pytest.raises(Rejected, match="command must be one of start, stop, reset"):
        parse_command(b'{"command": "jump"}')


def test_store_exactly_once(tmp_path):
    store = OrderStore(tmp_path / "cell.db")
    order = parse_order(json.dumps({"order_id": "O-1", "parts": ["duck", "mug"]}), CLASSES)
    assert store.accept(order) == "new"
    assert store.accept(order) == "duplicate"  # a redelivery: acknowledged again, not redone
    with pytest.raises(Rejected, match="duplicate order id with different content"):
        store.accept(parse_order(json.dumps({"order_id": "O-1", "parts": ["duck"]}), CLASSES))
    items = store.next_items(10)
    assert [cls for _, cls in items] == ["duck", "mug"] and store.next_items(10) == []
    assert store.item_placed(items[0][0], "duck", 0.9, 2.0) is True
    assert store.item_placed(items[0][0], "duck", 0.9, 2.0) is False  # the same completion twice counts once
    assert store.requeue_submitted() == 1  # a cell restart: the unfinished item goes back to pending
    (again,) = store.next_items(10)
    assert again[0] == items[1][0]
    assert store.item_placed(again[0], "lego", 0.5, 2.2) is True
    events = [json.loads(p) for _, _, p in store.unsent()]
    kinds = [e["event"] for e in events]
    assert kinds.count("done") == 1 and kinds.count("ack") == 2
    done = next(e for e in events if e["event"] == "done")
    assert done["items"] == [
        {"part": "duck", "state": "placed", "bin": "duck"},
        {"part": "mug", "state": "placed", "bin": "lego"},
    ]
    store.close()
    reopened = OrderStore(tmp_path / "cell.db")  # everything survived: counters, outbox, states
    assert reopened.counters()["orders_done"] == 1
    assert reopened.accept(order) == "duplicate"
    dup = json.loads(reopened.unsent()[-1][2])
    assert dup["state"] == "done" and dup["items"][1]["bin"] == "lego"  # a late repeat learns the result
    seqs = [s for s, _, _ in reopened.unsent()]
    reopened.mark_sent(seqs)
    assert reopened.unsent() == [] and reopened.counters()["events_unsent"] == 0
    reopened.close()


def test_the_cell_detector_leaves_a_core_to_the_plant_side(monkeypatch):
    from deepapps.runtime import threads
    from deepapps_robotics.plant.worker import detector_threads

    monkeypatch.delenv("DEEPAPPS_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    assert detector_threads() == 7
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    assert detector_threads() == 1
    monkeypatch.setenv("DEEPAPPS_THREADS", "4")  # an explicit setting wins
    assert detector_threads() == 4
