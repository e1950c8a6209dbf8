"""The face-recognition Streamlit page: detect, verify, manage a gallery, search, process a video.

The model comes from the shared model picker and the task's runner from ``cached_runner`` (one
load per process, on the device chosen in the sidebar); results show through ``result_view``.
What is particular to faces stays here: the gallery (enroll, list, delete, search) and video.
Every section also offers bundled samples (the scikit-image astronaut photo, a flipped copy, a
photo without a face, and a synthetic 640x480 clip), so the page works without uploads.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .specs import DEFAULTS, DETECTORS, TASK

SAMPLES = ("astronaut", "astronaut (flipped)", "coffee (no face)")


def _sample(name: str):
    import numpy as np
    from skimage import data

    if name == "astronaut":
        return data.astronaut()
    if name == "astronaut (flipped)":
        return np.ascontiguousarray(data.astronaut()[:, ::-1])
    return data.coffee()


def render() -> None:
    import streamlit as st

    from deepapps_ui import widgets

    from .gallery import default_path

    st.header("Face recognition")
    st.caption(
        "dlib's HOG / CNN (MMOD) detector, 68-point landmarks, and its 128-D ResNet descriptor "
        "(99.38% on LFW as published by dlib). Two faces are the same person when their distance "
        "is under 0.6."
    )
    c1, c2, c3 = st.columns(3)
    with c1:
        model = widgets.model_picker(TASK, key="faces_model", label="Embedder")
    detector = c2.selectbox("Detector", DETECTORS, index=DETECTORS.index(DEFAULTS["detector"]),
                            key="faces_detector", help="CNN is slower on CPU")  # fmt: skip
    gallery_path = c3.text_input("Gallery", value=str(default_path()), key="faces_gallery_path")
    if model is None:
        st.info("Pick a registered embedder, or type the path of a dlib .dat descriptor file.")
        return
    runner = None
    with widgets.page_errors("Loading the face models"):
        runner = widgets.cached_runner(TASK, model, detector=detector)
    if runner is None:
        return

    sections = {"Detect": _detect_tab, "Verify": _verify_tab, "Gallery": _gallery_tab,
                "Search": _search_tab, "Video": _video_tab}  # fmt: skip
    for tab, (title, draw) in zip(st.tabs(list(sections)), sections.items(), strict=True):
        with tab, widgets.page_errors(title):
            draw(st, widgets, runner, gallery_path)


def _image_input(st, label: str, key: str, default_sample: str = "astronaut") -> Any:
    """An uploaded image (bytes, never written to disk) or a chosen sample (array)."""
    up = st.file_uploader(label, type=["jpg", "jpeg", "png", "webp", "bmp"], key=f"{key}_upload")
    if up is not None:
        return up.getvalue()
    choice = st.selectbox(
        f"…or a sample for {label.lower()}", SAMPLES, index=SAMPLES.index(default_sample), key=f"{key}_sample"
    )
    return _sample(choice)


def _open_gallery(runner, path: str, create: bool = False):
    """The gallery at ``path`` with the runner's recognizer; None when it does not exist and
    ``create`` is False (only enrolling creates a gallery)."""
    from .gallery import Gallery, gallery_path

    target = gallery_path(path)
    if not create and not target.is_file():
        return None
    return Gallery(target, recognizer=runner.recognizer_for(), create=create)


def _detect_tab(st, widgets, runner, gallery_path: str) -> None:
    img = _image_input(st, "Photo", "faces_detect", "astronaut")
    if st.button("Detect faces", key="faces_detect_go"):
        result = runner(img)
        st.markdown(f"**{result.summary()}**")
        widgets.result_view(result, key="faces_detect_result")


def _verify_tab(st, widgets, runner, gallery_path: str) -> None:
    a = _image_input(st, "First photo", "faces_verify_a", "astronaut")
    b = _image_input(st, "Second photo", "faces_verify_b", "astronaut (flipped)")
    if st.button("Verify", key="faces_verify_go"):
        res = runner.verify(a, b)
        if res.distance is None:
            st.warning(res.reason)
        elif res.same:
            st.success(f"Same person: distance {res.distance:.3f} < {res.threshold}")
        else:
            st.info(f"Different people: distance {res.distance:.3f} ≥ {res.threshold}")
        widgets.result_view(res, key="faces_verify_result")


def _gallery_tab(st, widgets, runner, gallery_path: str) -> None:
    st.subheader("Enroll")
    name = st.text_input("Name", key="faces_enroll_name")
    uploads = st.file_uploader(
        "Photos of this person", type=["jpg", "jpeg", "png", "webp"], accept_multiple_files=True,
        key="faces_enroll_upload",
    )  # fmt: skip
    use_sample = st.checkbox("Use the astronaut sample photo", key="faces_enroll_sample")
    if st.button("Enroll", key="faces_enroll_go"):
        images = [u.getvalue() for u in uploads or []] + ([_sample("astronaut")] if use_sample else [])
        if not name.strip() or not images:
            st.warning("Give a name and at least one photo (or tick the sample).")
        else:
            with _open_gallery(runner, gallery_path, create=True) as gallery:
                report = gallery.enroll(name.strip(), images)
            skipped = len(report.no_face) + len(report.failed)
            st.success(
                f"{name}: {report.added} face(s) added, {report.unchanged} already enrolled"
                + (f", {skipped} photo(s) without a usable face" if skipped else "")
            )
    st.subheader("People")
    _people(st, runner, gallery_path)


def _people(st, runner, gallery_path: str) -> None:
    gallery = _open_gallery(runner, gallery_path)
    if gallery is None:
        st.markdown(f"The gallery `{gallery_path}` does not exist yet: enroll someone to create it.")
        return
    with gallery:
        people = gallery.list()
        if not people:
            st.markdown(f"The gallery `{gallery.path}` is empty.")
            return
        rows = "\n".join(f"| {p.name} | {p.embeddings} |" for p in people)
        st.markdown(f"| name | faces |\n|---|---|\n{rows}")
        who = st.selectbox("Delete", [p.name for p in people], key="faces_delete_name")
        if st.button("Delete", key="faces_delete_go"):
            n = gallery.remove(who)
            st.success(f"Removed {who} ({n} face(s))")
            st.rerun()


def _search_tab(st, widgets, runner, gallery_path: str) -> None:
    img = _image_input(st, "Photo to search", "faces_search", "astronaut (flipped)")
    k = st.slider("Results", 1, 10, 5, key="faces_search_k")
    if not st.button("Search", key="faces_search_go"):
        return
    gallery = _open_gallery(runner, gallery_path)
    if gallery is None or len(gallery) == 0:
        st.warning("The gallery is empty: enroll someone first.")
        return
    gallery.close()
    result = runner(img, gallery=gallery_path, top_k=k)
    if not result.faces:
        st.warning("No face found in this photo.")
        return
    matches = result.faces[0].matches
    best = matches[0]
    if best.same:
        st.success(f"Best match: {best.name} (distance {best.distance:.3f})")
    else:
        st.info(f"Nobody under the threshold; closest {best.name} (distance {best.distance:.3f})")
    rows = "\n".join(f"| {m.name} | {m.distance:.4f} | {'yes' if m.same else 'no'} |" for m in matches)
    st.markdown(f"Largest face:\n\n| name | distance | match |\n|---|---|---|\n{rows}")
    widgets.result_view(result, key="faces_search_result")


def _video_tab(st, widgets, runner, gallery_path: str) -> None:
    up = st.file_uploader("Video file", type=["mp4", "avi", "mov", "mkv", "webm"], key="faces_video_upload")
    use_sample = st.checkbox("Use a synthetic 640x480 sample clip (2 s)", key="faces_video_sample")
    if not st.button("Process video", key="faces_video_go"):
        return
    if up is None and not use_sample:
        st.warning("Upload a video or tick the sample clip.")
        return
    gallery = _open_gallery(runner, gallery_path)
    named = gallery is not None and len(gallery) > 0
    if gallery is not None:
        gallery.close()
    with tempfile.TemporaryDirectory(prefix="deepapps-faces-ui-") as tmp:  # removed with what is in it
        src = _video_source(Path(tmp), up)
        with st.spinner("Processing frames…"):
            res = runner(str(src), gallery=gallery_path if named else None, out=Path(tmp) / "faces.mp4",
                         progress=False)  # fmt: skip
        video = Path(res.output).read_bytes() if res.output else None
    who = ", ".join(f"{k} ({v} frames)" for k, v in res.identities.items()) or "nobody from the gallery"
    st.success(
        f"{res.frames} frames at {res.fps:.1f} fps end to end ({res.processing_fps:.1f} fps processing); "
        f"{res.faces_per_frame:.2f} faces per frame; seen: {who}; blinks: {res.blinks}"
    )
    widgets.result_view(res, key="faces_video_result")
    if video:
        st.video(video)
        st.download_button("Download the annotated video", video, file_name="faces.mp4", key="faces_video_dl")


def _video_source(folder: Path, upload: Any) -> Path:
    """The uploaded video written into ``folder``, or the synthetic sample clip made there."""
    from .evaluate import make_face_video

    if upload is None:
        return make_face_video(folder / "sample.mp4", frames=50)
    src = folder / f"input{Path(upload.name).suffix or '.mp4'}"
    src.write_bytes(upload.getvalue())
    return src
