"""The cell on OPC UA (asyncua): state, counters, cycle time and last error as variables; the
methods StartJob, Stop, Reset and InjectFault.

Endpoint ``opc.tcp://127.0.0.1:4840/deepapps/cell/`` by default, namespace ``urn:deepapps:cell``,
object ``Cell``. There is no authentication (security policy None), which is why it binds to
loopback unless told otherwise. A method called in the wrong state fails with BadInvalidState and
the reason is published on the MQTT events topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

NAMESPACE = "urn:deepapps:cell"
PATH = "/deepapps/cell/"
# variable name -> (snapshot key, OPC UA type)
VARIABLES = {
    "State": ("state", "String"),
    "LastError": ("last_error", "String"),
    "OrdersAccepted": ("orders_accepted", "Int64"),
    "OrdersDone": ("orders_done", "Int64"),
    "ItemsPlaced": ("items_placed", "Int64"),
    "ItemsFailed": ("items_failed", "Int64"),
    "ItemsOpen": ("items_open", "Int64"),
    "Rejections": ("rejections", "Int64"),
    "Slips": ("slips", "Int64"),
    "CameraDropouts": ("camera_dropouts", "Int64"),
    "CellRestarts": ("cell_restarts", "Int64"),
    "CycleTimeLast": ("cycle_time_last", "Double"),
    "CycleTimeMean": ("cycle_time_mean", "Double"),
    "PicksPerHour": ("picks_per_hour", "Double"),
    "RealTimeFactor": ("real_time_factor", "Double"),
}
METHODS = ("StartJob", "Stop", "Reset", "InjectFault")


def endpoint(host: str, port: int) -> str:
    return f"opc.tcp://{host}:{port}{PATH}"


class CellOpcUa:
    """Serves ``service.snapshot()`` and forwards method calls to ``service.command``/``service.inject``."""

    def __init__(self, service: Any, host: str, port: int, io) -> None:
        self.service, self.host, self.port, self.io = service, host, port, io
        self.server = None
        self.nodes: dict[str, Any] = {}
        self._task = None
        logging.getLogger("asyncua").setLevel(logging.ERROR)

    def start(self) -> None:
        self.io.run(self._start(), timeout=120)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.io.run(self._stop(), timeout=20)

    async def _start(self) -> None:
        from asyncua import Server, ua

        server = Server()
        await server.init()
        server.set_endpoint(endpoint(self.host, self.port))
        server.set_server_name("deepapps pick-and-place cell")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(NAMESPACE)
        cell = await server.nodes.objects.add_object(idx, "Cell")
        snap = self.service.snapshot()
        for name, (key, kind) in VARIABLES.items():
            value = snap.get(key)
            self.nodes[name] = await cell.add_variable(
                idx, name, _typed(value, kind), getattr(ua.VariantType, kind)
            )
        for name in ("StartJob", "Stop", "Reset"):
            await cell.add_method(idx, name, self._command(name), [], [ua.VariantType.String])
        await cell.add_method(
            idx, "InjectFault", self._inject, [ua.VariantType.String], [ua.VariantType.String]
        )
        await server.start()
        self.server = server
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def _refresh(self) -> None:
        while True:
            await self._write_all()
            await asyncio.sleep(0.2)

    async def _write_all(self) -> None:
        from asyncua import ua

        snap = self.service.snapshot()
        for name, (key, kind) in VARIABLES.items():
            with contextlib.suppress(Exception):
                await self.nodes[name].write_value(
                    ua.Variant(_typed(snap.get(key), kind), getattr(ua.VariantType, kind))
                )

    def _command(self, name: str):
        from asyncua import ua

        command = {"StartJob": "start", "Stop": "stop", "Reset": "reset"}[name]

        async def call(parent):
            ok, reason = self.service.command(command, source="opcua")
            await self._write_all()
            return _reply(ok, reason, ua.StatusCodes.BadInvalidState)

        return call

    async def _inject(self, parent, fault):
        from asyncua import ua

        ok, reason = self.service.inject(str(fault.Value), source="opcua")
        return _reply(ok, reason, ua.StatusCodes.BadInvalidArgument)


def _reply(ok: bool, reason: str, bad_code: int):
    """The method's answer: the text, with a Bad status code when the call was refused."""
    from asyncua import ua

    result = ua.CallMethodResult()
    result.OutputArguments = [ua.Variant(reason, ua.VariantType.String)]
    if not ok:
        result.StatusCode = ua.StatusCode(bad_code)
    return result


def _typed(value: Any, kind: str) -> Any:
    if kind == "String":
        return "" if value is None else str(value)
    if kind == "Double":
        return float(value or 0.0)
    return int(value or 0)


# client side (deepapps robot cell status / inject) -----------------------------------------------
def read_status(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """Every cell variable, read over OPC UA."""
    from asyncua.sync import Client

    with Client(url, timeout=timeout) as client:
        idx = client.get_namespace_index(NAMESPACE)
        cell = client.nodes.objects.get_child(f"{idx}:Cell")
        return {VARIABLES[name][0]: cell.get_child(f"{idx}:{name}").read_value() for name in VARIABLES}


def call_method(url: str, method: str, *args: str, timeout: float = 10.0) -> str:
    """Call one of the cell's methods; the reply text (raises on a refusal)."""
    from asyncua.sync import Client

    with Client(url, timeout=timeout) as client:
        idx = client.get_namespace_index(NAMESPACE)
        cell = client.nodes.objects.get_child(f"{idx}:Cell")
        return str(cell.call_method(f"{idx}:{method}", *args))
