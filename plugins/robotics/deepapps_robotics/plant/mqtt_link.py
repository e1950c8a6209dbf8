"""The cell's MQTT client (paho): orders and commands in, events out, at QoS 1.

An incoming message is acknowledged to the broker (manual PUBACK) only after the handler has
committed it to the store, so a crash before the commit means the broker delivers it again.
Events are published from the store's outbox and marked sent only on the broker's PUBACK; after a
reconnect everything unconfirmed is sent again (consumers drop repeats by the event's ``seq``), and an
``online`` event tells producers that the cell is subscribed again (a broker without persistent
sessions, like amqtt, drops what was published for the cell while it was away).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from .store import OrderStore

ORDERS_TOPIC = "deepapps/cell/orders"
COMMANDS_TOPIC = "deepapps/cell/commands"
RESEND_AFTER = 2.0  # seconds without a PUBACK before an event is sent again
# reconnect back-off (first retry, cap), seconds: a broker restart should cost its down time, not a
# long back-off on top; a refused connect on the network costs the broker next to nothing
RECONNECT_DELAY = (0.05, 0.25)


def tune_client(client) -> None:
    """Settings every MQTT client of the cell uses (the cell's, the simulated WMS's): quick reconnects,
    and TCP_NODELAY. paho leaves Nagle's algorithm on, so a small publish waits behind the peer's
    delayed ACK of the previous packet (up to 40 ms on Linux), which alone made order acks slow."""
    client.reconnect_delay_set(*RECONNECT_DELAY)
    client.on_socket_open = _no_delay


def _no_delay(client, userdata, sock) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket (unix, websocket wrapper)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class CellMqtt:
    """``on_order(payload)`` and ``on_command(payload)`` run on paho's network thread."""

    def __init__(
        self,
        host: str,
        port: int,
        store: OrderStore,
        on_order: Callable[[bytes], None],
        on_command: Callable[[bytes], None],
        client_id: str = "deepapps-cell",
    ) -> None:
        import paho.mqtt.client as mqtt

        self.store = store
        self.on_order, self.on_command = on_order, on_command
        self.connected = threading.Event()
        self.reconnects = 0
        self._connects = 0
        self._lock = threading.Lock()
        # events waiting for the broker's PUBACK: seq -> (topic, payload, last sent or None)
        self._pending: dict[int, list] = {
            seq: [topic, payload, None] for seq, topic, payload in store.unsent()
        }
        self._mids: dict[int, int] = {}  # mid -> seq
        self._confirmed: deque[int] = deque()
        self._sent: list[int] = []
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=True
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        tune_client(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.host, self.port = host, port
        self._stop = threading.Event()
        self._pump = threading.Thread(target=self._pump_loop, name="deepapps-cell-outbox", daemon=True)
        store.listener = self._written

    def start(self, timeout: float = 10.0) -> None:
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()
        self._pump.start()
        if not self.connected.wait(timeout):
            raise TimeoutError(f"could not reach the MQTT broker at {self.host}:{self.port}")

    def close(self) -> None:
        self._stop.set()
        self.store.listener = None
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
        self._pump.join(timeout=5)
        self._mark_sent()

    # paho callbacks -----------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        client.subscribe([(ORDERS_TOPIC, 1), (COMMANDS_TOPIC, 1)])
        with self._lock:
            self._mids.clear()
            for entry in self._pending.values():
                entry[2] = None  # send everything unconfirmed again on this connection
        self._connects += 1
        self.reconnects = self._connects - 1
        self.connected.set()
        # a birth message (through the outbox, like every event): producers re-send what is still open
        self.store.emit("online", reconnects=self.reconnects)
        self.flush()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            if msg.topic == ORDERS_TOPIC:
                self.on_order(msg.payload)
            elif msg.topic == COMMANDS_TOPIC:
                self.on_command(msg.payload)
        finally:
            # committed (or refused and announced): only now may the broker forget the message
            client.ack(msg.mid, msg.qos)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # paho holds its outgoing-message lock here and publish() takes it too: taking our lock here
        # could deadlock with a publishing thread, so confirmations are queued and settled later
        self._confirmed.append(mid)

    # outbox -------------------------------------------------------------------------------
    def _written(self, events: list[tuple[int, str, str]]) -> None:
        """The store committed these events: send them now."""
        with self._lock:
            for seq, topic, payload in events:
                self._pending[seq] = [topic, payload, None]
        self.flush()

    def _settle(self) -> None:
        """Confirmed mids -> sent events. Runs under our lock, as every publish does, so a confirmed
        mid is always registered by now; one that is not predates a reconnect and is dropped."""
        while self._confirmed:
            seq = self._mids.pop(self._confirmed.popleft(), None)
            if seq is not None and self._pending.pop(seq, None) is not None:
                self._sent.append(seq)

    def flush(self) -> int:
        """Publish pending events never sent on this connection, or sent too long ago."""
        if not self.connected.is_set():
            return 0
        now = time.monotonic()
        sent = 0
        with self._lock:
            self._settle()
            for seq in sorted(self._pending):
                entry = self._pending[seq]
                if entry[2] is not None and now - entry[2] < RESEND_AFTER:
                    continue
                info = self.client.publish(entry[0], entry[1], qos=1)
                if info.rc != 0:
                    break
                entry[2] = now
                self._mids[info.mid] = seq
                sent += 1
        return sent

    def _mark_sent(self) -> None:
        with self._lock:
            self._settle()
            done, self._sent = self._sent, []
        self.store.mark_sent(done)

    def _pump_loop(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(Exception):
                self.flush()
                self._mark_sent()
