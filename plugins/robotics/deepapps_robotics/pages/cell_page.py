"""The pick-and-place cell page: a live cell (broker, order store, cell) in this session, its camera
view with detections, counters, the order table, start/stop and fault buttons, and an order sender.

The cell runs in a thread of the Streamlit process with its own embedded broker on a free loopback
port; orders from the page go through that broker exactly like a WMS's.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

KEY = "robotics_cell"
FAULT_BUTTONS = (
    ("Broker restart", "broker_restart"),
    ("Gripper slip", "gripper_slip"),
    ("Camera dropout", "camera_dropout"),
    ("Cell restart", "cell_restart"),
)


class PageCell:
    """One live cell for one browser session: the service plus an MQTT client that sends orders."""

    def __init__(self, cell: str, detector: str | None, device: str) -> None:
        import paho.mqtt.client as mqtt

        from ..cell.parts import part_classes
        from ..plant.broker import free_port
        from ..plant.service import CellService, ServiceOptions
        from ..specs import DETECTOR

        self.folder = tempfile.TemporaryDirectory(prefix="deepapps-cell-page-")
        self.classes = part_classes()
        options = ServiceOptions(
            db=Path(self.folder.name) / "cell.db",
            mqtt_port=free_port(),
            opcua_port=free_port(),
            broker="amqtt",
            cell=cell,
            worker="thread",
            autostart=True,
            opcua=False,
            ready_timeout=300,
            cell_options={
                "detector": detector or DETECTOR.default,
                "device": device,
                "frames": True,
                "stub_cycle": 2.0,
            },
        )
        self.service = CellService(options, self.classes)
        self.service.start()
        self.sent = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="deepapps-cell-page")
        self.client.connect("127.0.0.1", options.mqtt_port)
        self.client.loop_start()

    def send_orders(self, n: int, parts: int, seed: int) -> None:
        import numpy as np

        from ..plant.mqtt_link import ORDERS_TOPIC

        rng = np.random.default_rng(seed + self.sent)
        for _ in range(n):
            self.sent += 1
            chosen = [self.classes[int(k)] for k in rng.integers(len(self.classes), size=parts)]
            payload = json.dumps({"order_id": f"PAGE-{self.sent:05d}", "parts": chosen})
            self.client.publish(ORDERS_TOPIC, payload, qos=1)

    def send_raw(self, payload: str) -> None:
        from ..plant.mqtt_link import ORDERS_TOPIC

        self.client.publish(ORDERS_TOPIC, payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.service.close()
        self.folder.cleanup()


def render() -> None:
    import streamlit as st

    from deepapps_ui import widgets

    st.header("Pick-and-place cell")
    st.caption(
        "A simulated Franka Panda sorts parts from a conveyor into one bin per class. It sees them with the "
        "object-detection task and a depth camera; orders arrive over MQTT and are kept in an SQLite store."
    )
    live: PageCell | None = st.session_state.get(KEY)
    if live is None:
        _start_form(st, widgets)
        return
    _controls(st, live)
    _live_view(st, widgets, live)


def _start_form(st, widgets) -> None:
    from ..specs import DETECTOR

    col1, col2 = st.columns(2)
    cell = col1.selectbox(
        "Cell",
        ["physics", "stub"],
        key="cell_kind",
        format_func=lambda c: {
            "physics": "physics (Panda + detector)",
            "stub": "stub (integration only, no robot)",
        }[c],
    )
    detector = col2.text_input("Detector", value=DETECTOR.default, key="cell_detector")
    if st.button("Start the cell", key="cell_start", type="primary"):
        with widgets.page_errors("Starting the cell"), st.spinner("Starting broker, store and cell …"):
            st.session_state[KEY] = PageCell(cell, detector.strip() or None, widgets.current_device())
            st.rerun()


def _controls(st, live: PageCell) -> None:
    cols = st.columns(4)
    for col, (label, command) in zip(
        cols, (("StartJob", "start"), ("Stop", "stop"), ("Reset", "reset")), strict=False
    ):
        if col.button(label, key=f"cell_cmd_{command}"):
            ok, reason = live.service.command(command, source="page")
            (st.success if ok else st.warning)(reason)
    if cols[3].button("Shut down", key="cell_shutdown"):
        live.close()
        del st.session_state[KEY]
        st.rerun()
    fcols = st.columns(len(FAULT_BUTTONS))
    for col, (label, fault) in zip(fcols, FAULT_BUTTONS, strict=True):
        if col.button(label, key=f"cell_fault_{fault}"):
            ok, what = live.service.inject(fault, source="page")
            (st.info if ok else st.warning)(what)
    ocols = st.columns([1, 1, 2])
    n = ocols[0].number_input("Orders", min_value=1, max_value=100, value=3, key="cell_orders")
    parts = ocols[1].number_input("Parts per order", min_value=1, max_value=5, value=1, key="cell_parts")
    if ocols[2].button("Send orders", key="cell_send"):
        live.send_orders(int(n), int(parts), seed=0)
        time.sleep(0.3)
    raw = st.text_input(
        "Raw order message (JSON)", key="cell_raw", placeholder='{"order_id": "X1", "parts": ["duck"]}'
    )
    if st.button("Send raw message", key="cell_send_raw") and raw:
        live.send_raw(raw)
        time.sleep(0.3)


def _live_view(st, widgets, live: PageCell) -> None:
    @st.fragment(run_every=1.5)
    def panel() -> None:
        _panel(st, widgets, live)

    panel()


def _panel(st, widgets, live: PageCell) -> None:
    from ..cell.recording import annotate

    snap = live.service.snapshot()
    left, right = st.columns([3, 2])
    frame = live.service.last_frame
    if frame is not None:
        import io

        import numpy as np
        from PIL import Image

        rgb = np.asarray(Image.open(io.BytesIO(frame["png"])).convert("RGB"))
        left.image(annotate(rgb, frame["grasps"]), caption=f"camera at t = {frame['time']} s (simulated)")
    else:
        left.info("No camera frame yet (the stub cell has no camera).")
    right.markdown(
        f"**State:** `{snap['state']}`  "
        + (f"— last error: {snap['last_error']}" if snap["last_error"] else "")
    )
    m1, m2, m3 = right.columns(3)
    m1.metric("Orders done", f"{snap['orders_done']}/{snap['orders_accepted']}")
    m2.metric("Items placed", snap["items_placed"])
    m3.metric("Rejected", snap["rejections"])
    m4, m5, m6 = right.columns(3)
    m4.metric("Cycle time", f"{snap['cycle_time_mean']:.2f} s")
    m5.metric("Picks/h", f"{snap['picks_per_hour']:.0f}")
    m6.metric("Slips", snap["slips"])
    right.caption(
        f"cell {snap['cell']}, detector {snap['detector']}, broker {snap['broker']} on {snap['mqtt']}, "
        f"restarts: cell {snap['cell_restarts']}, broker {snap['broker_restarts']}"
    )
    orders = live.service.store.recent_orders(15)
    st.subheader("Orders")
    if orders:
        st.markdown(
            widgets.md_table(
                ["order", "state", "parts", "placed", "failed"],
                [[o["order_id"], o["state"], o["parts"], o["placed"], o["failed"]] for o in orders],
            )
        )
    else:
        st.caption("No orders yet: send some.")
