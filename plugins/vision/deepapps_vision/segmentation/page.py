"""Streamlit page: click points or drag a box on the image, the mask follows; segment everything;
detect then segment. The image embedding is computed once per image (the runner's cache), so each
click only runs the prompt decoder. Each next click is a corrective click the way SAM is evaluated:
the previous click's low-resolution logits go with it as ``mask_input`` (so the model's
``max_points`` and click check apply, as in ``deepapps eval segmentation``)."""

from __future__ import annotations

from typing import Any

import numpy as np

TASK = "segmentation"
SOURCES = ("Sample render", "Coins photo", "Upload image")
CLICK_MODES = ("Positive point", "Negative point", "Box (drag)")
STATE = "seg_prompts"


def _image(st: Any) -> tuple[np.ndarray | None, str]:
    """The chosen image as an RGB array and a name that changes when the image changes."""
    source = st.radio("Image", SOURCES, horizontal=True, key="seg_source")
    if source == "Sample render":
        seed = int(st.number_input("Scene seed", 0, 1_000_000, 10_001, key="seg_seed"))
        return _render(st, seed), f"render-{seed}"
    if source == "Coins photo":
        from .data import coins

        return coins().image, "coins"
    upload = st.file_uploader(
        "Image", type=["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"], key="seg_upload"
    )
    if upload is None:
        return None, ""
    from deepapps.runtime.images import load_image

    return np.asarray(load_image(upload.getvalue(), name=upload.name)), f"upload-{upload.file_id}"


def _render(st: Any, seed: int) -> np.ndarray:
    @st.cache_data(show_spinner="Rendering a scene…", max_entries=16)
    def render_cached(seed: int) -> np.ndarray:
        from deepapps_vision.scenes import render_scene

        return render_scene(seed, 320).image

    return render_cached(seed)


def _prompts(st: Any, name: str) -> dict[str, Any]:
    """This image's prompts in session state (reset when the image changes)."""
    state = st.session_state.get(STATE)
    if state is None or state.get("image") != name:
        state = {
            "image": name,
            "points": [],
            "labels": [],
            "logits": [],  # logits[i]: the low-res logits of the mask after click i + 1 (the next mask_input)
            "box": None,
            "action": "prompt",
            "seen": None,
        }
        st.session_state[STATE] = state
    return state


def _buttons(st: Any, state: dict[str, Any]) -> None:
    cols = st.columns(4)
    if cols[0].button("Undo", key="seg_undo") and state["points"]:
        state["points"].pop()
        state["labels"].pop()
        del state["logits"][len(state["points"]) :]
    if cols[1].button("Clear", key="seg_clear"):
        state.update(points=[], labels=[], logits=[], box=None, action="prompt")
    if cols[2].button("Segment everything", key="seg_everything"):
        state.update(points=[], labels=[], logits=[], box=None, action="everything")
    if cols[3].button("Detect then segment", key="seg_detect"):
        state.update(points=[], labels=[], logits=[], box=None, action="detect")


def _everything_settings(st: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """The segment-everything settings, starting from the loaded model's own values (the shared option widget,
    the thresholds as sliders)."""
    from dataclasses import replace

    from deepapps_ui import widgets

    from .specs import EVERYTHING_OPTIONS

    values = {}
    with st.expander("Segment everything: settings"):
        for opt in EVERYTHING_OPTIONS:
            if opt.type in ("bool", "int"):
                own = replace(opt, default=defaults[opt.name])
                values[opt.name] = widgets.option_widget(own, key=f"seg_{opt.name}")
            else:
                values[opt.name] = st.slider(
                    opt.name.replace("_", " "),
                    0.0,
                    1.0,
                    float(defaults[opt.name]),
                    0.01,
                    key=f"seg_{opt.name}",
                    help=opt.help,
                )
    return values


def _run(runner: Any, image: np.ndarray, state: dict[str, Any], everything: dict[str, Any]) -> Any:
    if state["action"] == "everything":
        return runner(image, **everything)
    if state["action"] == "detect":
        return runner(image, boxes_from="object-detection")
    if not state["points"] and state["box"] is None:
        return None
    points = [v for p in state["points"] for v in p] or None
    count, logits = len(state["points"]), state.setdefault("logits", [])
    # a next click (no box): the previous click's logits go with it, as in the corrective-click protocol
    aligned = state["box"] is None and len(logits) >= count - 1
    previous = logits[count - 2] if aligned and count > 1 else None
    result = runner(
        image, points=points, labels=state["labels"] or None, box=state["box"], mask_input=previous
    )
    if aligned and count and result.low_res_logits is not None and len(result.low_res_logits):
        state["logits"] = logits[: count - 1] + [result.low_res_logits[0]]
    return result


def _add_click(value: dict[str, Any] | None, state: dict[str, Any], mode: str, size: tuple[int, int]) -> bool:
    """Record a new click (or drag) from the image component; True when the prompts changed."""
    if not value or value.get("unix_time") == state["seen"]:
        return False
    state["seen"] = value.get("unix_time")
    sx = size[0] / max(value.get("width") or size[0], 1)
    sy = size[1] / max(value.get("height") or size[1], 1)
    if mode == CLICK_MODES[2] and "x1" in value:
        x1, x2 = sorted((value["x1"] * sx, value["x2"] * sx))
        y1, y2 = sorted((value["y1"] * sy, value["y2"] * sy))
        if x2 - x1 < 2 or y2 - y1 < 2:
            return False
        state["box"] = [max(x1, 0.0), max(y1, 0.0), min(x2, size[0]), min(y2, size[1])]
    else:
        x = min(max(value["x"] * sx, 0.0), size[0] - 0.5)
        y = min(max(value["y"] * sy, 0.0), size[1] - 0.5)
        state["points"].append([x, y])
        state["labels"].append(1 if mode == CLICK_MODES[0] else 0)
    state["action"] = "prompt"
    return True


def _downloads(st: Any, result: Any) -> None:
    if result is None or not result.instances:
        return
    index = 0
    if len(result.instances) > 1:
        names = [f"{i}: {m.label or 'mask'} ({m.area} px)" for i, m in enumerate(result.instances)]
        index = st.selectbox(
            "Mask to download", range(len(names)), format_func=lambda i: names[i], key="seg_pick"
        )
    cols = st.columns(2)
    cols[0].download_button(
        "Download mask (PNG)", result.mask_png(index), f"mask-{index}.png", "image/png", key="seg_png"
    )
    cols[1].download_button(
        "All masks (JSON, COCO RLE)",
        result.to_json(indent=1),
        "masks.json",
        "application/json",
        key="seg_json",
    )


def render() -> None:
    """Draw the page (streamlit and the model are imported here, never while plugins are listed)."""
    import streamlit as st
    from streamlit_image_coordinates import streamlit_image_coordinates

    from deepapps_ui import widgets

    st.header("Segmentation (SAM)")
    st.caption(
        "Click points (green: object, red: background) or drag a box; the mask updates from the cached "
        "image embedding. Segment everything uses a grid of clicks; detect then segment prompts SAM "
        "with the object detector's boxes."
    )
    model = widgets.model_picker(TASK, key="seg_model")
    if model is None:
        st.info("Give a model path (e.g. a sam_vit_b .pth file).")
        return
    with widgets.page_errors("Segmentation"):
        runner = widgets.cached_runner(TASK, model)
        refine = st.toggle(
            "Refine mask edges (guided filter)",
            value=runner.refinement.active,
            key="seg_refine",
            help="Sharpen each prompted mask along the image's own edges; the starting value is the model's.",
        )
        if refine != runner.refinement.active:  # same model and embedding cache, other refinement
            from .refine import GUIDED, NONE, Refinement

            runner = runner.with_refinement(Refinement(GUIDED if refine else NONE))
        zoom = st.toggle(
            "Zoom in on the object",
            value=runner.zoom.active,
            key="seg_zoom",
            help="Segment the object again on a crop around it at the encoder's full resolution (the crop's "
            "embedding is computed per click); the starting value is the model's.",
        )
        if zoom != runner.zoom.active:  # the model's own magnification and context, switched
            from dataclasses import replace

            from .zoom import OFF, ON

            runner = runner.with_zoom(replace(runner.zoom, mode=ON if zoom else OFF))
        check = st.toggle(
            "Check clicks",
            value=runner.click_check != "off",
            key="seg_click_check",
            help="After a next click, keep the candidate mask that contradicts the fewest of your clicks (the "
            "decoder's four masks and each of them applied only around the new click) instead of SAM's "
            "single mask; the starting value is the model's.",
        )
        if check != (runner.click_check != "off"):
            from .clicks import LOCAL, OFF

            runner = runner.with_click_check(LOCAL if check else OFF)
        image, name = _image(st)
        if image is None:
            st.info("Upload an image to segment.")
            return
        state = _prompts(st, name)
        mode = st.radio("A click adds", CLICK_MODES, horizontal=True, key="seg_mode")
        _buttons(st, state)
        result = _run(runner, image, state, _everything_settings(st, runner.everything_defaults))
        picture = result.plot() if result is not None else image
        value = streamlit_image_coordinates(
            picture, key=f"seg_canvas_{mode}", click_and_drag=mode == CLICK_MODES[2]
        )
        if _add_click(value, state, mode, (image.shape[1], image.shape[0])):
            st.rerun()
        if result is not None and not result.instances and state["action"] == "everything":
            st.warning("No mask passed the filters; lower the predicted-IoU or stability threshold.")
        if result is not None:
            cached = "yes" if result.embedding_cached else "no (computed now)"
            st.caption(
                f"{result.summary()} · edges: {'refined' if runner.refinement.active else 'unrefined'}"
                f" · zoom-in: {'on' if runner.zoom.active else 'off'}"
                f" · click check: {runner.click_check}"
                f" · embedding cached: {cached} · encoder runs so far: "
                f"{runner.encoder_calls} · "
                + " · ".join(f"{k} {v:.0f} ms" for k, v in result.timings.items())
            )
            _downloads(st, result)
        else:
            st.caption("Click on the image to add a point, or switch to Box and drag.")
