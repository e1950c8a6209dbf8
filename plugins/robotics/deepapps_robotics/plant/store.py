"""The order store (SQLite): exactly-once order handling that survives restarts.

- An order id is accepted once. A repeat with the same content is a duplicate delivery: it is
  acknowledged again and never processed again; a repeat with different content is rejected.
- Every state change and the event announcing it are written in one transaction (an *outbox*),
  committed and fsynced before anything is acknowledged; events leave the outbox only when the
  broker confirms them (QoS 1), so a broker restart delays events but never loses them.
- Items of an order move pending -> submitted -> placed | failed; an order is done exactly once,
  in the transaction that finishes its last item. After a cell restart, submitted items go back to
  pending and are done again; items already placed never are.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .messages import Order, Rejected

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, digest TEXT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL,
    n_items INTEGER NOT NULL, received REAL NOT NULL, done REAL);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders(order_id), idx INTEGER NOT NULL,
    cls TEXT NOT NULL, state TEXT NOT NULL, bin TEXT, conf REAL, cycle_s REAL, reason TEXT,
    true_class TEXT, landed TEXT, updated REAL);
CREATE INDEX IF NOT EXISTS items_state ON items(state, order_id, idx);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload TEXT NOT NULL, created REAL NOT NULL,
    sent REAL);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox(sent, seq);
CREATE TABLE IF NOT EXISTS cell (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
EVENTS_TOPIC = "deepapps/cell/events"


class OrderStore:
    """One SQLite file (WAL, synchronous=FULL), shared by the cell's threads through one lock."""

    def __init__(self, path: str | Path, events_topic: str = EVENTS_TOPIC) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.topic = events_topic
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._new: list[tuple[int, str, str]] = []
        self._durable = True
        self.listener = None  # called after each commit with the events it wrote: [(seq, topic, payload)]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # transactions -------------------------------------------------------------------------
    def _tx(self, fn, *args, durable: bool = True):
        """Run ``fn`` in one write transaction. ``durable`` ones (anything an event or an ack depends
        on) are fsynced at commit; the rest (sent marks, scores) may lose their last writes to a power
        cut, which only means an event sent again or a score missing."""
        with self._lock:
            if durable != self._durable:
                self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(*args)
            except BaseException:
                self._db.execute("ROLLBACK")
                self._new = []
                raise
            self._db.execute("COMMIT")
            written, self._new = self._new, []
        if written and self.listener is not None:
            self.listener(written)
        return out

    def _event(self, event: str, **data: Any) -> None:
        body = {"event": event, "time": round(time.time(), 4), **data}
        payload = json.dumps(body, sort_keys=True)
        seq = self._db.execute(
            "INSERT INTO outbox(topic, payload, created) VALUES (?, ?, ?)", (self.topic, payload, time.time())
        ).lastrowid
        self._new.append((int(seq), self.topic, json.dumps({**body, "seq": seq}, sort_keys=True)))

    # orders -------------------------------------------------------------------------------
    def accept(self, order: Order) -> str:
        """Persist a new order and its ack event; ``"new"`` or ``"duplicate"`` (re-acked, not redone)."""
        return self._tx(self._accept, order)

    def _accept(self, order: Order) -> str:
        row = self._db.execute(
            "SELECT digest, state FROM orders WHERE order_id=?", (order.order_id,)
        ).fetchone()
        if row is not None:
            if row[0] != order.digest:
                raise Rejected(
                    "duplicate order id with different content; an order id is used once", order.order_id
                )
            extra = {"items": self._results(order.order_id)} if row[1] == "done" else {}
            self._event("ack", order_id=order.order_id, duplicate=True, state=row[1], **extra)
            return "duplicate"
        now = time.time()
        self._db.execute(
            "INSERT INTO orders VALUES (?, ?, ?, 'accepted', ?, ?, NULL)",
            (order.order_id, order.digest, order.canonical(), len(order.parts), now),
        )
        self._db.executemany(
            "INSERT INTO items(item_id, order_id, idx, cls, state, updated) VALUES (?, ?, ?, ?, 'pending', ?)",
            [(f"{order.order_id}#{i}", order.order_id, i, cls, now) for i, cls in enumerate(order.parts)],
        )
        self._event("ack", order_id=order.order_id, duplicate=False, parts=len(order.parts))
        return "new"

    def reject(self, reason: str, order_id: str | None = None, kind: str = "order") -> None:
        """Announce a refused message (nothing else changes)."""
        self._tx(lambda: self._event("rejected", order_id=order_id, what=kind, reason=reason))

    def emit(self, event: str, **data: Any) -> None:
        """A plain event (slip, fault, state change...) through the outbox."""
        self._tx(lambda: self._event(event, **data))

    # items --------------------------------------------------------------------------------
    def next_items(self, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` pending items, oldest order first, marked submitted: (item_id, class)."""

        def take():
            rows = self._db.execute(
                "SELECT i.item_id, i.cls FROM items i JOIN orders o USING(order_id) WHERE i.state='pending' "
                "ORDER BY o.received, i.idx LIMIT ?",
                (limit,),
            ).fetchall()
            self._db.executemany(
                "UPDATE items SET state='submitted', updated=? WHERE item_id=?",
                [(time.time(), r[0]) for r in rows],
            )
            return [(r[0], r[1]) for r in rows]

        return self._tx(take) if limit > 0 else []

    def requeue_submitted(self) -> int:
        """After a cell restart: items the lost cell had in hand go back to pending."""
        return self._tx(
            lambda: self._db.execute("UPDATE items SET state='pending' WHERE state='submitted'").rowcount
        )

    def item_placed(self, item_id: str, bin_name: str, conf: float | None, cycle_s: float | None) -> bool:
        """Record a placed item (once); finishes its order when it was the last. False if already final."""
        return self._tx(self._finish_item, item_id, "placed", bin_name, conf, cycle_s, None)

    def item_failed(self, item_id: str, reason: str) -> bool:
        return self._tx(self._finish_item, item_id, "failed", None, None, None, reason)

    def _finish_item(self, item_id, state, bin_name, conf, cycle_s, reason) -> bool:
        row = self._db.execute("SELECT order_id, state FROM items WHERE item_id=?", (item_id,)).fetchone()
        if row is None or row[1] in ("placed", "failed"):
            return False
        order_id = row[0]
        self._db.execute(
            "UPDATE items SET state=?, bin=?, conf=?, cycle_s=?, reason=?, updated=? WHERE item_id=?",
            (state, bin_name, conf, cycle_s, reason, time.time(), item_id),
        )
        self._event("item_" + state, order_id=order_id, item=item_id, bin=bin_name, reason=reason)
        open_items = self._db.execute(
            "SELECT COUNT(*) FROM items WHERE order_id=? AND state NOT IN ('placed','failed')", (order_id,)
        ).fetchone()[0]
        if open_items == 0:
            self._finish_order(order_id)
        return True

    def _finish_order(self, order_id: str) -> None:
        updated = self._db.execute(
            "UPDATE orders SET state='done', done=? WHERE order_id=? AND state!='done'",
            (time.time(), order_id),
        ).rowcount
        if updated != 1:
            return
        results = self._results(order_id)
        self._event(
            "done",
            order_id=order_id,
            items=results,
            placed=sum(r["state"] == "placed" for r in results),
            failed=sum(r["state"] == "failed" for r in results),
        )

    def _results(self, order_id: str) -> list[dict[str, Any]]:
        items = self._db.execute(
            "SELECT cls, state, bin FROM items WHERE order_id=? ORDER BY idx", (order_id,)
        ).fetchall()
        return [{"part": c, "state": s, "bin": b} for c, s, b in items]

    def record_score(self, item_id: str, true_class: str, landed: str | None) -> None:
        """Scoring only (simulator truth): what the part really was and where it really landed."""
        self._tx(
            lambda: self._db.execute(
                "UPDATE items SET true_class=?, landed=? WHERE item_id=?", (true_class, landed, item_id)
            ),
            durable=False,
        )

    # outbox -------------------------------------------------------------------------------
    def unsent(self, limit: int = 1_000_000) -> list[tuple[int, str, str]]:
        """Events not yet confirmed by the broker, oldest first: (seq, topic, payload with seq)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload FROM outbox WHERE sent IS NULL ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        out = []
        for seq, topic, payload in rows:
            data = json.loads(payload)
            data["seq"] = seq
            out.append((seq, topic, json.dumps(data, sort_keys=True)))
        return out

    def mark_sent(self, seqs: list[int]) -> None:
        if seqs:
            self._tx(
                lambda: self._db.executemany(
                    "UPDATE outbox SET sent=? WHERE seq=? AND sent IS NULL", [(time.time(), s) for s in seqs]
                ),
                durable=False,
            )

    # cell state ---------------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM cell WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_state(self, state: str, last_error: str | None = None, event: bool = True) -> None:
        def write():
            self._db.execute("INSERT OR REPLACE INTO cell VALUES ('state', ?)", (state,))
            if last_error is not None:
                self._db.execute("INSERT OR REPLACE INTO cell VALUES ('last_error', ?)", (last_error,))
            if event:
                self._event("state", state=state, last_error=last_error)

        self._tx(write)

    # reading ------------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        with self._lock:
            orders = dict(self._db.execute("SELECT state, COUNT(*) FROM orders GROUP BY state").fetchall())
            items = dict(self._db.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall())
            scored = self._db.execute(
                "SELECT COUNT(*), SUM(landed = true_class) FROM items WHERE true_class IS NOT NULL"
            ).fetchone()
            unsent = self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NULL").fetchone()[0]
        return {
            "orders_accepted": sum(orders.values()),
            "orders_done": orders.get("done", 0),
            "items_placed": items.get("placed", 0),
            "items_failed": items.get("failed", 0),
            "items_open": items.get("pending", 0) + items.get("submitted", 0),
            "items_scored": scored[0] or 0,
            "items_sorted_right": scored[1] or 0,
            "events_unsent": unsent,
        }

    def recent_orders(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT o.order_id, o.state, o.n_items, o.received, o.done, "
                "SUM(i.state='placed'), SUM(i.state='failed') FROM orders o JOIN items i USING(order_id) "
                "GROUP BY o.order_id ORDER BY o.received DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            {
                "order_id": r[0],
                "state": r[1],
                "parts": r[2],
                "placed": r[5],
                "failed": r[6],
                "received": r[3],
                "done": r[4],
            }
            for r in rows
        ]
