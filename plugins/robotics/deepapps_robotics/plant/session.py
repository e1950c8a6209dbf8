"""Running the cell with a simulated WMS and a fault schedule: what ``deepapps robot cell run --wms-orders``
does, also used by the benchmarks. The WMS runs in its own process, so its timings do not share an
interpreter lock with the cell."""

from __future__ import annotations

import multiprocessing as mp
import secrets
import time
from typing import Any

from .service import CellService

FAULT_PLAN = (("broker_restart", 0.4), ("camera_dropout", 0.6), ("cell_restart", 0.8))


def run_prefix() -> str:
    """Order ids unique to this WMS run. The store remembers every id it accepted: a second run that
    reused ``WMS-000000``... with other parts would have every order refused as a reused id (and
    re-sent until the timeout), and with the same parts would be answered from the last run's results."""
    return f"WMS-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def fault_schedule(n_orders: int, chaos: bool, slip_every: int) -> dict[int, list[str]]:
    """Order index -> faults to inject when the WMS has sent that many orders."""
    plan: dict[int, list[str]] = {}
    if chaos:
        for fault, share in FAULT_PLAN:
            plan.setdefault(max(1, int(n_orders * share)), []).append(fault)
    if slip_every:
        for i in range(slip_every, n_orders + 1, slip_every):
            plan.setdefault(i, []).append("gripper_slip")
    return plan


def _wms_main(conn, host: str, port: int, classes: tuple[str, ...], n_orders: int, kwargs: dict) -> None:
    from .wms import SimulatedWMS

    wms = SimulatedWMS(host, port, classes, **kwargs)
    wms.start()
    report = wms.run(n_orders, timeout=24 * 3600.0, on_progress=lambda i: conn.send(("progress", i + 1)))
    wms.close()
    conn.send(("report", report))


def run_wms(
    service: CellService,
    n_orders: int,
    wms_options: dict[str, Any],
    schedule: dict[int, list[str]],
    timeout: float,
    echo=None,
) -> dict[str, Any]:
    """Start the WMS process, inject faults on schedule, wait for its report (or time out)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_wms_main,
        args=(
            child,
            service.o.host,
            service.o.mqtt_port,
            service.classes,
            n_orders,
            {"prefix": run_prefix(), **wms_options},
        ),
        daemon=True,
    )
    proc.start()
    injected: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    report = None
    try:
        while time.monotonic() < deadline and report is None:
            if not parent.poll(0.5):
                if not proc.is_alive():
                    break
                continue
            kind, value = parent.recv()
            if kind == "report":
                report = value
            elif kind == "progress":
                for fault in schedule.get(value, []):
                    ok, what = service.inject(fault, source="schedule")
                    injected.append({"after_order": value, "fault": fault, "ok": ok, "what": what})
                    if echo:
                        echo(f"after order {value}: {fault}: {what}")
    finally:
        if proc.is_alive() and report is None:
            proc.kill()
        proc.join(timeout=5)
    if report is None:
        report = {"error": f"the WMS did not finish within {timeout:.0f} s"}
    report["faults_injected"] = injected
    return report
