"""Streamlit page for object detection: sample render, bundled photo or upload; video tracking.

Model choice, loading (cached, on the sidebar's device), uploads and the result view come from
the shared widgets in :mod:`deepapps_ui.widgets`; this page adds the detection controls, the
box table and video tracking. Uploaded files and annotated videos live in temporary folders
that are removed as soon as the page has shown them.
"""

from __future__ import annotations

import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from .specs import TASK

SOURCES = ("Sample render", "Bundled photo", "Upload image", "Video (tracking)")
IMAGE_SIZES = [224, 256, 320, 416, 480, 640]


def bundled_photos() -> dict[str, Path]:
    """The photos that ship with the ultralytics wheel (bus.jpg, zidane.jpg)."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    assets = Path(spec.origin).parent / "assets" if spec and spec.origin else None
    if not assets or not assets.is_dir():
        return {}
    return {p.name: p for p in sorted(assets.glob("*.jpg"))}


def _table(result: Any) -> list[dict[str, Any]]:
    return [
        {
            "class": d.class_name,
            "conf": round(d.conf, 3),
            "x1": round(d.xyxy[0], 1),
            "y1": round(d.xyxy[1], 1),
            "x2": round(d.xyxy[2], 1),
            "y2": round(d.xyxy[3], 1),
            **({"track": d.track_id} if d.track_id is not None else {}),
        }
        for d in result.detections
    ]


def render() -> None:
    """Draw the page (imports streamlit here so listing plugins stays light)."""
    import streamlit as st

    from deepapps_ui import widgets

    st.header("Object detection")
    st.caption(
        "YOLO (ultralytics) with deepapps' bundled yolo11n-half-scenes model, trained on rendered pybullet "
        "scenes; your own .safetensors or .onnx weights work too (a pickled .pt only if you trust it)."
    )
    det = _detector(st, widgets)
    if det is None:
        return
    options = _controls(st, det)
    source = st.radio("Input", SOURCES, horizontal=True, key="det_source")
    with widgets.page_errors("Detection"):
        if source == "Video (tracking)":
            _video(st, widgets, det, options)
            return
        image = _pick_image(st, source)
        if image is None:
            st.info("Choose an image to detect objects in.")
            return
        if hasattr(image, "getvalue"):  # an upload: a temporary file named as uploaded, removed after use
            result = widgets.run_on_input(det, image, **options)
        else:
            result = det(image, **options)
        _show(st, widgets, result)


def _detector(st: Any, widgets: Any) -> Any:
    """The chosen model through the shared picker and cache; None (with a message) when unusable."""
    from .loading import PICKLE_SUFFIXES

    model = widgets.model_picker(TASK, key="det_model")
    if model is None:
        st.info("Type the path of a weights file: .safetensors, .onnx, or a pickled .pt you trust.")
        return None
    trust = False
    if Path(model).suffix.lower() in PICKLE_SUFFIXES:
        trust = st.checkbox(
            "I trust this file: loading pickled weights runs any code inside them", key="det_trust_weights"
        )
    with widgets.page_errors("Loading the model"):
        return widgets.cached_runner(TASK, model, **({"trust_weights": True} if trust else {}))
    return None


def _controls(st: Any, det: Any) -> dict[str, Any]:
    c1, c2, c3 = st.columns(3)
    conf = c1.slider("Confidence", 0.0, 1.0, 0.25, 0.01, key="det_conf")
    iou = c2.slider("NMS IoU", 0.1, 1.0, 0.7, 0.05, key="det_iou")
    sizes = sorted(set(IMAGE_SIZES) | {det.imgsz})
    imgsz = c3.select_slider("Image size", sizes, value=det.imgsz, key="det_imgsz")
    names = [det.names[i] for i in sorted(det.names)]
    keep = st.multiselect("Classes (empty = all)", names, key="det_classes")
    return {"conf": conf, "iou": iou, "imgsz": imgsz, "classes": keep or None}


def _show(st: Any, widgets: Any, result: Any) -> None:
    left, right = st.columns([3, 2])
    with left:
        widgets.result_view(result)
    right.subheader(f"{len(result.detections)} detection(s)")
    if result.detections:
        right.dataframe(_table(result), hide_index=True)
    else:
        right.info("Nothing above the confidence threshold.")


def _pick_image(st: Any, source: str) -> Any:
    if source == "Sample render":
        seed = st.number_input("Scene seed", 0, 1_000_000, 10_001, key="det_seed")
        return _render_scene(st, int(seed))
    if source == "Bundled photo":
        photos = bundled_photos()
        if not photos:
            st.warning("ultralytics ships no sample photos in this install")
            return None
        name = st.selectbox("Photo", list(photos), key="det_photo")
        return str(photos[name])
    return st.file_uploader(
        "Image", type=["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff"], key="det_upload"
    )


def _render_scene(st: Any, seed: int) -> Any:
    @st.cache_data(show_spinner="Rendering a scene…")
    def render_cached(seed: int) -> Any:
        from deepapps_vision.scenes import render_scene

        return render_scene(seed, 320).image

    return render_cached(seed)


def _video(st: Any, widgets: Any, det: Any, options: dict[str, Any]) -> None:
    upload = st.file_uploader("Video", type=["mp4", "avi", "mov", "mkv", "webm"], key="det_video")
    use_sample = st.checkbox("Use a short rendered sample clip", key="det_video_sample")
    max_frames = st.number_input("Max frames", 1, 2000, 60, key="det_video_frames")
    if not st.button("Track objects", key="det_video_go"):
        return
    if upload is None and not use_sample:
        st.info("Upload a video or tick the sample clip.")
        return
    with tempfile.TemporaryDirectory(prefix="deepapps-det-video-") as tmp:
        clip_source = (
            widgets.upload_as_file(upload)
            if upload is not None
            else nullcontext(str(_sample_clip(Path(tmp) / "sample.mp4")))
        )
        with clip_source as clip, st.spinner("Tracking…"):
            result = det(
                clip, track=True, out=Path(tmp) / "tracked.mp4", max_frames=int(max_frames), **options
            )
            st.success(
                f"{result.frames} frames tracked at {result.timings['per_frame']:.0f} ms/frame; "
                + (", ".join(f"{k}: {v}" for k, v in result.counts.items()) or "no objects")
            )
            st.dataframe(
                [{"class": k, "distinct tracks": v} for k, v in result.counts.items()], hide_index=True
            )
            st.image(result.plot(), caption="last frame", width="stretch")
            st.video(str(result.output))  # read into Streamlit's media store before the folder goes


def _sample_clip(path: Path) -> Path:
    """A 12-frame clip: the camera view of one rendered scene, panned by shifting the picture."""
    import numpy as np

    from deepapps_vision.common.video import write_video
    from deepapps_vision.scenes import render_scene

    image = render_scene(10_002, 320).image
    frames = [np.roll(image, shift=4 * i, axis=1) for i in range(12)]
    return write_video(path, frames, fps=6)
