"""MQTT brokers the cell can run itself: the embedded ``amqtt`` broker (default) or Debian's ``mosquitto``.

Both listen on 127.0.0.1 unless told otherwise, allow anonymous clients (so: loopback only by
default), and can be restarted in place, which is how the broker-restart fault is injected.
``external`` uses a broker someone else runs and cannot be restarted from here.
"""

from __future__ import annotations

import contextlib
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


def listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def refuse_taken(host: str, port: int) -> None:
    """A broker we start must not find the port taken: the clients would silently use the other one."""
    if listening(host, port):
        raise DeepAppsError(
            f"{host}:{port} is already in use (another MQTT broker?); give a free --mqtt-port, "
            "or --broker external to use the broker listening there"
        )


def wait_listening(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise DeepAppsError(
                f"the MQTT broker exited (code {proc.returncode}) before listening on {host}:{port}"
            )
        time.sleep(0.05)
    raise DeepAppsError(f"MQTT broker did not start listening on {host}:{port} within {timeout:.0f} s")


class EmbeddedBroker:
    """amqtt's broker in a child Python process (:mod:`.amqtt_serve`), so it shares no interpreter lock
    with the cell, and a restart is a real process restart. On a restart the replacement process is
    launched as the old one stops and imports amqtt during the down time; it binds the port when the
    down time is over."""

    kind = "amqtt"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._proc: subprocess.Popen | None = None
        self._next: subprocess.Popen | None = None
        self._closed = False

    def _launch(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "deepapps_robotics.plant.amqtt_serve", self.host, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        refuse_taken(self.host, self.port)
        proc, self._next = self._next or self._launch(), None
        self._proc = proc
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        try:
            wait_listening(self.host, self.port, timeout=60, proc=proc)
        except DeepAppsError:
            self.stop()
            raise

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        back_at = time.monotonic() + down_seconds
        self._next = self._launch()
        time.sleep(max(0.0, back_at - time.monotonic()))
        if not self._closed:  # the service may have shut down meanwhile: start nothing it won't stop
            self.start()

    def close(self) -> None:
        self._closed = True
        self.stop()
        _stop(self._next)
        self._next = None


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
        self._closed = False

    def start(self) -> None:
        refuse_taken(self.host, self.port)
        self._proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(self.host, self.port, proc=self._proc)

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        if not self._closed:
            self.start()

    def close(self) -> None:
        self._closed = True
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
