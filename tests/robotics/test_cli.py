"""``deepapps robot cell run|status|inject`` on loopback (mosquitto, as CI runs it)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from deepapps.cli import _add_plugin_commands, cli
from deepapps_robotics.plant.broker import MOSQUITTO_PATHS, free_port


def _invoke(args):
    _add_plugin_commands()
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _have_mosquitto() -> bool:
    from pathlib import Path

    return bool(shutil.which("mosquitto") or any(Path(p).exists() for p in MOSQUITTO_PATHS))


@pytest.mark.skipif(not _have_mosquitto(), reason="mosquitto is not installed (apt-get install mosquitto)")
def test_run_with_mosquitto_wms_and_chaos(tmp_path):
    out = _invoke(
        ["robot", "cell", "run", "--db", str(tmp_path / "cell.db"), "--broker", "mosquitto",
         "--mqtt-port", str(free_port()), "--opcua-port", str(free_port()), "--cell", "stub",
         "--worker", "thread", "--wms-orders", "30", "--wms-rate", "10", "--wms-parts", "1-2",
         "--chaos", "--slip-every", "10", "--timeout", "120", "--json"]
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["orders_done"] == 30 and report["orders_lost"] == 0 and report["orders_done_twice"] == 0
    assert report["items_in_ordered_bin"] == report["items"] and report["items_failed"] == 0
    faults = {f["fault"] for f in report["faults_injected"] if f["ok"]}
    assert faults == {"broker_restart", "camera_dropout", "cell_restart", "gripper_slip"}
    assert report["cell"]["cell_restarts"] == 1 and report["cell"]["broker_restarts"] == 1
    # a slip armed after the last order, or lost with the killed cell, never shows: at least one did
    assert report["cell"]["slips"] >= 1 and report["cell"]["orders_done"] == 30


def test_status_and_inject_over_opcua(stub_service):
    port = str(stub_service.o.opcua_port)
    out = _invoke(["robot", "cell", "status", "--opcua-port", port, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["state"] in {"Running", "Idle"}
    before = stub_service.counts["slips"]
    assert "armed" in _invoke(["robot", "cell", "inject", "gripper_slip", "--opcua-port", port]).stdout
    assert stub_service.counts["slips"] == before  # counted when the cell reports the slip, not before


def test_refuses_remote_bind_without_opt_in(tmp_path):
    out = _invoke(["robot", "cell", "run", "--host", "0.0.0.0", "--db", str(tmp_path / "c.db")])
    assert out.exit_code == 2 and "no authentication" in out.output


def test_status_without_a_cell_says_how_to_start_one():
    out = _invoke(["robot", "cell", "status", "--opcua-port", str(free_port())])
    assert out.exit_code == 2 and "deepapps robot cell run" in out.output


def test_run_refuses_a_port_another_broker_holds(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        out = _invoke(
            ["robot", "cell", "run", "--db", str(tmp_path / "c.db"), "--mqtt-port", port,
             "--opcua-port", str(free_port()), "--cell", "stub", "--worker", "thread", "--duration", "0.1"]
        )  # fmt: skip
    assert out.exit_code == 2 and "already in use" in out.output and "--mqtt-port" in out.output
