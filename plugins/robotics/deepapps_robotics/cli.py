"""``deepapps robot cell run|status|inject``: the pick-and-place cell as a plant would run it.

``run`` starts the MQTT broker (embedded amqtt by default, or Debian's mosquitto), the OPC UA server,
the order store and the cell, all on 127.0.0.1; with ``--wms-orders N`` a simulated WMS sends N
orders and the command ends with its report. ``status`` and ``inject`` talk to a running cell over
OPC UA.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import click

from deepapps.errors import DeepAppsError

FAULT_NAMES = ("broker_restart", "gripper_slip", "camera_dropout", "cell_restart")


def _opcua_url(host: str, port: int) -> str:
    from .plant.opcua_server import endpoint

    return endpoint(host, port)


@click.group("robot")
def robot_group() -> None:
    """Robot cells and their plant integration (OPC UA, MQTT, a simulated WMS)."""


@robot_group.group("cell")
def cell_group() -> None:
    """The vision-guided pick-and-place cell: run it, read its status, inject faults."""


def _parts_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise click.BadParameter(f"{text!r}: give N or N-M, e.g. 1-3") from None
    if not 1 <= a <= b <= 50:
        raise click.BadParameter(f"{text!r}: between 1 and 50 parts per order")
    return a, b


@cell_group.command("run")
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Order store (SQLite); default: DEEPAPPS_HOME/robotics/cell.db.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address the broker and OPC UA server bind."
)
@click.option(
    "--allow-remote", is_flag=True, help="Allow a non-loopback --host (neither server authenticates)."
)
@click.option("--mqtt-port", default=1883, show_default=True, type=click.IntRange(1, 65535))
@click.option("--opcua-port", default=4840, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--broker",
    type=click.Choice(["amqtt", "mosquitto", "external"]),
    default="amqtt",
    show_default=True,
    help="amqtt: embedded; mosquitto: Debian's broker started here; external: one already running.",
)
@click.option(
    "--cell",
    "cell_kind",
    type=click.Choice(["physics", "stub"]),
    default="physics",
    show_default=True,
    help="physics: the simulated Panda cell; stub: places every item instantly (integration tests).",
)
@click.option("--worker", type=click.Choice(["process", "thread"]), default="process", show_default=True)
@click.option(
    "--detector", default=None, help="Object-detection model the cell sees with (default: pick-and-place's)."
)
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--belt-speed", default=None, type=click.FloatRange(0.05, 0.6), help="m/s (default 0.25).")
@click.option(
    "--arrival-rate", default=None, type=click.FloatRange(1, 120), help="Parts per minute (default 24)."
)
@click.option(
    "--no-autostart", is_flag=True, help="Start Idle: StartJob (OPC UA) or a start command begins work."
)
@click.option(
    "--wms-orders",
    default=0,
    show_default=True,
    type=click.IntRange(0, 1_000_000),
    help="Run a simulated WMS that sends this many orders, then report and exit (0: serve until Ctrl-C).",
)
@click.option(
    "--wms-rate", default=20.0, show_default=True, type=click.FloatRange(0.01, 10_000), help="Orders/s."
)
@click.option("--wms-parts", default="1", show_default=True, help="Parts per order: N or N-M.")
@click.option(
    "--wms-bad-every",
    default=0,
    show_default=True,
    type=click.IntRange(0, 1_000_000),
    help="Also send a bad message (malformed, unknown class, reused id...) after every N orders.",
)
@click.option(
    "--chaos", is_flag=True, help="Inject a broker restart, a camera dropout and a cell restart mid-run."
)
@click.option(
    "--slip-every",
    default=0,
    show_default=True,
    type=click.IntRange(0, 1_000_000),
    help="Inject a gripper slip after every N orders.",
)
@click.option(
    "--timeout",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(1, 7 * 24 * 3600),
    help="Seconds the WMS run may take.",
)
@click.option(
    "--duration", default=None, type=click.FloatRange(0.1), help="Without a WMS: serve this long, then stop."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report on stdout at the end.")
def run_cmd(
    db,
    host,
    allow_remote,
    mqtt_port,
    opcua_port,
    broker,
    cell_kind,
    worker,
    detector,
    device,
    seed,
    belt_speed,
    arrival_rate,
    no_autostart,
    wms_orders,
    wms_rate,
    wms_parts,
    wms_bad_every,
    chaos,
    slip_every,
    timeout,
    duration,
    as_json,
) -> None:
    """Start the cell with its broker and OPC UA server (127.0.0.1 by default)."""
    from .plant.service import CellService, ServiceOptions, check_bind
    from .plant.session import fault_schedule, run_wms

    check_bind(host, allow_remote)
    parts = _parts_range(wms_parts)
    options = ServiceOptions(
        db=Path(db) if db else _default_db(),
        host=host,
        mqtt_port=mqtt_port,
        opcua_port=opcua_port,
        broker=broker,
        cell=cell_kind,
        worker=worker,
        autostart=not no_autostart,
        cell_options=_cell_options(detector, device, seed, belt_speed, arrival_rate),
    )

    def say(message: str) -> None:
        click.echo(message, err=True)

    service = CellService(options, _classes())
    say(f"starting the cell ({cell_kind}, {worker}); store {options.db}")
    t0 = time.perf_counter()
    try:  # a start that fails half-way must not leave a broker child holding the port
        service.start()
        say(
            f"ready in {time.perf_counter() - t0:.1f} s: MQTT {host}:{mqtt_port} ({broker}), "
            f"OPC UA {_opcua_url(host, opcua_port)}, detector {service.cell_info.get('detector')}"
        )
        if wms_orders:
            report = run_wms(
                service,
                wms_orders,
                {"rate": wms_rate, "parts": parts, "bad_every": wms_bad_every, "seed": seed},
                fault_schedule(wms_orders, chaos, slip_every),
                timeout,
                echo=say,
            )
            report["cell"] = service.snapshot()
            _print_report(report, as_json)
        else:
            _serve(duration, say)
            if as_json:
                click.echo(json.dumps(service.snapshot(), default=str))
    finally:
        service.close()


def _serve(duration: float | None, say) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    say("serving; Ctrl-C to stop")
    try:
        stop.wait(duration)
    except KeyboardInterrupt:
        pass


def _print_report(report: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report, default=str))
        return
    for key, value in report.items():
        if key != "cell":
            click.echo(f"{key:<26} {value}")


def _default_db() -> Path:
    from deepapps.runtime.home import home

    return home() / "robotics" / "cell.db"


def _classes() -> tuple[str, ...]:
    from .cell.parts import part_classes

    return part_classes()


def _cell_options(detector, device, seed, belt_speed, arrival_rate) -> dict:
    from deepapps.runtime.device import select_device

    from .specs import DETECTOR

    out = {"detector": detector or DETECTOR.default, "device": select_device(device), "seed": seed}
    if belt_speed is not None:
        out["belt_speed"] = belt_speed
    if arrival_rate is not None:
        out["arrival_rate"] = arrival_rate
    return out


@cell_group.command("status")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--opcua-port", default=4840, show_default=True, type=click.IntRange(1, 65535))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status_cmd(host: str, opcua_port: int, as_json: bool) -> None:
    """Read the running cell's state, counters, cycle time and last error over OPC UA."""
    from .plant.opcua_server import read_status

    url = _opcua_url(host, opcua_port)
    try:
        status = read_status(url)
    except (OSError, TimeoutError) as exc:
        raise DeepAppsError(
            f"no cell answers at {url} ({exc}); start one with `deepapps robot cell run`"
        ) from None
    if as_json:
        click.echo(json.dumps(status, default=str))
        return
    for key, value in status.items():
        click.echo(f"{key:<18} {value}")


@cell_group.command("inject")
@click.argument("fault", type=click.Choice(FAULT_NAMES))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--opcua-port", default=4840, show_default=True, type=click.IntRange(1, 65535))
def inject_cmd(fault: str, host: str, opcua_port: int) -> None:
    """Inject a fault into the running cell (through its OPC UA InjectFault method)."""
    from .plant.opcua_server import call_method

    url = _opcua_url(host, opcua_port)
    try:
        click.echo(call_method(url, "InjectFault", fault))
    except (OSError, TimeoutError) as exc:
        raise DeepAppsError(
            f"no cell answers at {url} ({exc}); start one with `deepapps robot cell run`"
        ) from None


@cell_group.command("views")
@click.option(
    "--n", "count", default=150, show_default=True, type=click.IntRange(1, 100_000), help="Views to render."
)
@click.option(
    "--seed",
    default=999,
    show_default=True,
    type=click.IntRange(0),
    help="Seed (training renders use the seed of `deepapps train pick-and-place`, 0 by default).",
)
@click.option(
    "--out", "out_dir", default="runs/cell-views", show_default=True, type=click.Path(file_okay=False)
)
def views_cmd(count: int, seed: int, out_dir: str) -> None:
    """Render labelled cell camera views as a held-out detection set (all in the test split)."""
    from .cell.views import generate

    click.echo(generate(Path(out_dir), count, seed, _classes(), only="test"))
