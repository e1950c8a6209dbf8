"""Ray, started here or joined: the one place that starts or connects to a Ray cluster.

By default a command starts a private local Ray inside itself (``num_cpus`` explicit, no
dashboard, no usage statistics, workers at the command's own priority, no metrics or task events:
:data:`LOCAL_SYSTEM_CONFIG`; it needs no network, loopback is enough) and stops it at the end.
``--ray-address ADDRESS`` (or the ``RAY_ADDRESS`` environment variable) joins a cluster started
with ``ray start --head`` instead; an address that does not answer fails within
:data:`CONNECT_TIMEOUT_S` seconds, before anything starts. See docs/scale-out.md.
Ray is imported only when a session starts (``import deepapps`` stays light).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import DeepAppsError, InputError

ENV_ADDRESS = "RAY_ADDRESS"
CONNECT_TIMEOUT_S = 3.0
DEFAULT_GCS_PORT = 6379
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2  # plenty for weights and results; /dev/shm is often small

# RayConfig overrides of the private local instance only (names of Ray 2.60's ray_config_def.h; a
# joined cluster keeps the settings its `ray start` was given, see docs/scale-out.md)
LOCAL_SYSTEM_CONFIG: dict[str, Any] = {
    # Ray renices its workers to 15 to keep its daemons responsive; here the workers are the job, and
    # at nice 15 a worker gets ~3% of a core shared with a nice-0 process, ~70% against a nice-19 one
    "worker_niceness": 0,
    # no Prometheus metrics: nothing scrapes a private instance, and recording costs every process CPU
    "enable_metrics_collection": False,
    # no per-task state events to the GCS every second (only the dashboard and `ray list tasks` read them)
    "task_events_report_interval_ms": 0,
    # no timing statistics of every event-loop handler in the daemons and workers
    "event_stats": False,
}


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise DeepAppsError(
            "Ray is not installed: pip install 'deepapps[scale]' (or pip install 'ray>=2.52')"
        ) from exc
    return ray


def resolve_address(address: str | None) -> str | None:
    """The cluster to join: ``address`` if given, else ``$RAY_ADDRESS``, else None (start Ray here)."""
    chosen = (address or os.environ.get(ENV_ADDRESS) or "").strip()
    return chosen or None


def host_and_port(address: str) -> tuple[str, int]:
    """``host:port`` of a Ray address (``ray://host:port`` too); a bare host means the GCS port 6379."""
    text = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, DEFAULT_GCS_PORT
    if not port.isdigit() or not host:
        raise InputError(f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379)")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, with what to do, when nothing listens at ``address`` (Ray itself retries for long)."""
    if address in ("auto", "local"):
        return
    host, port = host_and_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DeepAppsError(
            f"cannot reach the Ray cluster at {address} ({reason}); start one on the head node with "
            "`ray start --head --port 6379`, or drop --ray-address and unset RAY_ADDRESS to run on this machine"
        ) from None


def init_kwargs(address: str | None, num_cpus: int | None) -> dict[str, Any]:
    """``ray.init`` arguments: join ``address``, else a quiet private local instance."""
    common = {"log_to_driver": False, "configure_logging": False, "ignore_reinit_error": True}
    if address:
        return {"address": address, **common}
    return {
        "num_cpus": int(num_cpus or os.cpu_count() or 1),
        "include_dashboard": False,
        "_node_ip_address": "127.0.0.1",  # loopback only: works offline and in a network namespace
        "object_store_memory": LOCAL_OBJECT_STORE_BYTES,
        "_system_config": dict(LOCAL_SYSTEM_CONFIG),
        **common,
    }


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Start (or join) Ray for the duration of a ``with`` block; yields the ``ray`` module.

    A session already open in this process (e.g. a notebook's ``ray.init()``) is reused and left
    open. ``num_cpus`` sizes a local instance only; a joined cluster has its own size.
    """
    address = resolve_address(address)
    if address:
        check_reachable(address)
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address:
        os.environ.pop(ENV_ADDRESS, None)  # an empty RAY_ADDRESS would make ray.init look for a cluster
    with _stdout_to_stderr():
        try:
            ray.init(**init_kwargs(address, num_cpus))
        except ConnectionError as exc:
            raise DeepAppsError(f"could not join the Ray cluster at {address}: {exc}") from None
        try:
            yield ray
        finally:
            ray.shutdown()


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr while Ray runs: its processes and messages (``(raylet) ...``)
    write there, and ``--json`` promises exactly one JSON value on stdout."""
    import sys

    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded use): nothing to protect
        yield
        return
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def cluster_cpus(ray: Any) -> int:
    """CPUs the connected cluster offers (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
