"""The warehouse page: the learned shared policy and the scripted baseline on the same episode, as an
animated grid each, with deliveries over time and the episode's figures."""

from __future__ import annotations

import io


def gif(frames, fps: int = 8, every: int = 1) -> bytes:
    """Frames (RGB arrays) as an animated GIF (every ``every``-th frame)."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames[::every]] or [Image.new("RGB", (8, 8), "white")]
    buf = io.BytesIO()
    images[0].save(
        buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
    )
    return buf.getvalue()


def render() -> None:
    import streamlit as st

    from deepapps_ui import widgets

    from ..specs import WAREHOUSE

    st.header("Warehouse robots")
    st.caption(
        "Robots carry parcels from shelf pick spots (brown rows) to packing stations (green). Filled robots "
        "carry a parcel; a line points to each robot's target. One policy network drives every robot."
    )
    model = widgets.model_picker(WAREHOUSE, key="wh_model")
    c1, c2, c3 = st.columns(3)
    robots = c1.slider("Robots", 1, 12, 6, key="wh_robots")
    steps = c2.slider("Steps", 20, 400, 120, step=20, key="wh_steps")
    seed = c3.number_input("Episode seed", min_value=0, value=10_000, step=1, key="wh_seed")
    if not st.button("Play both policies", key="wh_play", type="primary"):
        st.info("Press the button to play the learned policy and the scripted baseline on the same episode.")
        return
    with widgets.page_errors("Warehouse episode"):
        runner = widgets.cached_runner(WAREHOUSE, model)
        _play(st, widgets, runner, int(robots), int(steps), int(seed))


def _play(st, widgets, runner, robots: int, steps: int, seed: int) -> None:
    from ..warehouse.env import WarehouseEnv
    from ..warehouse.evaluate import play
    from ..warehouse.scripted import ScriptedPolicy

    runs = {}
    cols = st.columns(2)
    for col, (name, policy) in zip(
        cols, (("learned", runner.policy(seed=seed)), ("scripted", ScriptedPolicy(seed))), strict=True
    ):
        env = WarehouseEnv(n_robots=robots, max_steps=steps)
        frames: list = []
        stats = play(env, policy, seed, frames)
        runs[name] = stats
        col.subheader(f"{name}: {stats['deliveries']} deliveries, {stats['collisions']} collisions")
        col.image(
            gif(frames, every=max(1, steps // 120)), caption=f"{robots} robots, {steps} steps, seed {seed}"
        )
    import pandas as pd

    chart = pd.DataFrame({name: r["curve"] for name, r in runs.items()})
    chart.index.name = "step"
    st.subheader("Deliveries over time")
    st.line_chart(chart)
    rows = [
        [
            name,
            r["deliveries"],
            r["collisions"],
            f"{100 * r['deliveries'] / steps:.2f}",
            f"{100 * r['collisions'] / steps:.2f}",
        ]
        for name, r in runs.items()
    ]
    st.markdown(
        widgets.md_table(
            ["policy", "deliveries", "collisions", "throughput / 100 steps", "collisions / 100 steps"], rows
        )
    )
