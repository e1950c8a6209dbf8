"""MQTT brokers the cell can run itself: the embedded ``amqtt`` broker (default) or Debian's ``mosquitto``.

Both listen on 127.0.0.1 unless told otherwise, allow anonymous clients (so: loopback only by
default), and can be restarted in place, which is how the broker-restart fault is injected.
``external`` uses a broker someone else runs and cannot be restarted from here.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepapps.errors import DeepAppsError

BROKERS = ("amqtt", "mosquitto", "external")
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (tests and the UI run their own servers)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise DeepAppsError(f"MQTT broker did not start listening on {host}:{port} within {timeout:.0f} s")


class EmbeddedBroker:
    """amqtt's broker in a child Python process (``python -m deepapps_robotics.plant.broker``), so it
    shares no interpreter lock with the cell, and a restart is a real process restart."""

    kind = "amqtt"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "deepapps_robotics.plant.broker", self.host, str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(self.host, self.port, timeout=60)
        except DeepAppsError:
            self.stop()
            raise

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def close(self) -> None:
        self.stop()


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_amqtt(host: str, port: int) -> None:
    """Run amqtt on ``host:port`` until killed (the child process's main)."""
    import asyncio

    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):  # it logs every dropped connection; a restart drops them all
        logging.getLogger(name).setLevel(logging.CRITICAL)
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 256}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }

    async def main() -> None:
        broker = Broker(config)
        await broker.start()
        await asyncio.Event().wait()

    asyncio.run(main())


class MosquittoBroker:
    """Debian's mosquitto as a child process, configured for loopback and anonymous clients, with
    persistence on (a restart keeps subscriber sessions and their queued messages)."""

    kind = "mosquitto"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        exe = shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)
        if exe is None:
            raise DeepAppsError(
                "mosquitto is not installed; `apt-get install mosquitto`, or use --broker amqtt"
            )
        self.exe = exe
        self._dir = tempfile.TemporaryDirectory(prefix="deepapps-mosquitto-")
        self.conf = Path(self._dir.name) / "mosquitto.conf"
        # persistence: sessions and queued QoS 1 messages survive a broker restart (saved on shutdown)
        self.conf.write_text(
            f"listener {port} {host}\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self._dir.name}/\nautosave_interval 1\n"
            "log_dest none\nmax_inflight_messages 100\nmax_queued_messages 100000\n"
            "set_tcp_nodelay true\n"  # no Nagle delay on small messages
        )
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(self.host, self.port)

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


class ExternalBroker:
    """A broker run elsewhere: nothing to start, and no restart from here."""

    kind = "external"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def start(self) -> None:
        wait_listening(self.host, self.port, timeout=5)

    def stop(self) -> None:
        pass

    def restart(self, down_seconds: float = 1.0) -> None:
        raise DeepAppsError("the broker is external: restart it where it runs")

    def close(self) -> None:
        pass


def make_broker(kind: str, host: str, port: int):
    if kind == "amqtt":
        return EmbeddedBroker(host, port)
    if kind == "mosquitto":
        return MosquittoBroker(host, port)
    if kind == "external":
        return ExternalBroker(host, port)
    raise DeepAppsError(f"unknown broker {kind!r}; use one of {', '.join(BROKERS)}")


if __name__ == "__main__":
    serve_amqtt(sys.argv[1], int(sys.argv[2]))
