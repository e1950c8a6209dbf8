"""Streamlit page for object detection: sample render, bundled photo or upload; video tracking."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

SOURCES = ("Sample render", "Bundled photo", "Upload image", "Video (tracking)")


def bundled_photos() -> dict[str, Path]:
    """The photos that ship with the ultralytics wheel (bus.jpg, zidane.jpg)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("ultralytics")
        assets = Path(spec.origin).parent / "assets" if spec and spec.origin else None
    except ImportError:  # pragma: no cover
        assets = None
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

    import deepapps
    from deepapps.errors import DeepAppsError

    st.header("Object detection")
    st.caption(
        "YOLO (ultralytics) with deepapps' bundled yolo11n-half-scenes model, trained on rendered pybullet "
        "scenes; any ultralytics weights file works too (COCO classes for yolo11n.pt)."
    )
    models = [m.name for m in deepapps.list_models("object-detection")]
    col_model, col_path = st.columns(2)
    model_name = col_model.selectbox("Model", models or ["yolo11n-half-scenes"], key="det_model")
    custom = col_path.text_input("…or a weights file (.pt / .onnx / .safetensors)", key="det_custom")

    @st.cache_resource(show_spinner="Loading model…")
    def get_detector(name: str) -> Any:
        return deepapps.load("object-detection", model=name, device="cpu")

    try:
        det = get_detector(custom.strip() or model_name)
    except DeepAppsError as exc:
        st.error(str(exc))
        return

    c1, c2, c3 = st.columns(3)
    conf = c1.slider("Confidence", 0.0, 1.0, 0.25, 0.01, key="det_conf")
    iou = c2.slider("NMS IoU", 0.1, 1.0, 0.7, 0.05, key="det_iou")
    imgsz = c3.select_slider("Image size", [224, 256, 320, 416, 480, 640], value=det.imgsz, key="det_imgsz")
    names = [det.names[i] for i in sorted(det.names)]
    keep = st.multiselect("Classes (empty = all)", names, key="det_classes")
    source = st.radio("Input", SOURCES, horizontal=True, key="det_source")
    options = {"conf": conf, "iou": iou, "imgsz": imgsz, "classes": keep or None}

    try:
        if source == "Video (tracking)":
            _video(st, det, options)
            return
        image = _pick_image(st, source)
        if image is None:
            st.info("Choose an image to detect objects in.")
            return
        result = det(image, **options)
    except DeepAppsError as exc:
        st.error(str(exc))
        return
    left, right = st.columns([3, 2])
    left.image(result.plot(), caption=result.summary(), width="stretch")
    right.subheader(f"{len(result.detections)} detection(s)")
    if result.detections:
        right.dataframe(_table(result), hide_index=True)
    else:
        right.info("Nothing above the confidence threshold.")
    right.caption(" · ".join(f"{k} {v:.0f} ms" for k, v in result.timings.items()))
    st.download_button("Results as JSON", result.to_json(indent=2), "detections.json", key="det_json")


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
        return photos[name]
    upload = st.file_uploader(
        "Image", type=["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff"], key="det_upload"
    )
    return upload.getvalue() if upload is not None else None


def _render_scene(st: Any, seed: int) -> Any:
    @st.cache_data(show_spinner="Rendering a scene…")
    def render_cached(seed: int) -> Any:
        from deepapps_vision.scenes import render_scene

        return render_scene(seed, 320).image

    return render_cached(seed)


def _video(st: Any, det: Any, options: dict[str, Any]) -> None:
    upload = st.file_uploader("Video", type=["mp4", "avi", "mov", "mkv", "webm"], key="det_video")
    use_sample = st.checkbox("Use a short rendered sample clip", key="det_video_sample")
    max_frames = st.number_input("Max frames", 1, 2000, 60, key="det_video_frames")
    if not st.button("Track objects", key="det_video_go"):
        return
    tmp = Path(tempfile.mkdtemp(prefix="deepapps-det-video-"))
    if upload is not None:
        clip = tmp / Path(upload.name).name
        clip.write_bytes(upload.getvalue())
    elif use_sample:
        clip = _sample_clip(tmp / "sample.mp4")
    else:
        st.info("Upload a video or tick the sample clip.")
        return
    with st.spinner("Tracking…"):
        result = det(
            str(clip), track=True, video_out=tmp / "tracked.mp4", max_frames=int(max_frames), **options
        )
    st.success(
        f"{result.frames} frames tracked at {result.timings['per_frame']:.0f} ms/frame; "
        + (", ".join(f"{k}: {v}" for k, v in result.counts.items()) or "no objects")
    )
    st.dataframe([{"class": k, "distinct tracks": v} for k, v in result.counts.items()], hide_index=True)
    st.image(result.plot(), caption="last frame", width="stretch")
    st.video(str(result.output))


def _sample_clip(path: Path) -> Path:
    """A 12-frame clip: the camera view of one rendered scene, panned by shifting the picture."""
    import numpy as np

    from deepapps_vision.common.video import write_video
    from deepapps_vision.scenes import render_scene

    image = render_scene(10_002, 320).image
    frames = [np.roll(image, shift=4 * i, axis=1) for i in range(12)]
    return write_video(path, frames, fps=6)
