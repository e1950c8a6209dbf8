"""The face-recognition Streamlit page: verify two photos, manage a gallery, search, process a video.

Every section also offers the bundled sample (the scikit-image astronaut photo, a flipped copy,
a photo without a face, and a synthetic 640x480 clip), so the page works without uploads.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

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

    from deepapps import DeepAppsError

    from .gallery import Gallery, default_path
    from .recognizer import FaceRecognizer

    @st.cache_resource(show_spinner="Loading dlib face models…")
    def recognizer(detector: str) -> FaceRecognizer:
        rec = FaceRecognizer(detector=detector)
        _ = rec.embedder  # load the descriptor once
        return rec

    @st.cache_resource
    def open_gallery(path: str, detector: str) -> Gallery:
        return Gallery(path, recognizer=recognizer(detector))

    st.header("Face recognition")
    st.caption(
        "dlib's HOG / CNN (MMOD) detector, 68-point landmarks, and its 128-D ResNet descriptor "
        "(99.38% on LFW as published by dlib). Two faces are the same person when their distance "
        "is under 0.6."
    )
    c1, c2 = st.columns(2)
    detector = c1.selectbox("Detector", ["hog", "cnn"], key="faces_detector", help="CNN is slower on CPU")
    gallery_path = c2.text_input("Gallery", value=str(default_path()), key="faces_gallery_path")
    try:
        rec = recognizer(detector)
        gallery = open_gallery(gallery_path, detector)
    except DeepAppsError as exc:
        st.error(str(exc))
        return

    tab_verify, tab_gallery, tab_search, tab_video = st.tabs(["Verify", "Gallery", "Search", "Video"])
    with tab_verify:
        _verify_tab(st, rec)
    with tab_gallery:
        _gallery_tab(st, gallery)
    with tab_search:
        _search_tab(st, gallery)
    with tab_video:
        _video_tab(st, rec, gallery)


def _image_input(st, label: str, key: str, default_sample: str = "astronaut") -> Any:
    """An uploaded image (bytes) or a chosen sample (array)."""
    up = st.file_uploader(label, type=["jpg", "jpeg", "png", "webp", "bmp"], key=f"{key}_upload")
    if up is not None:
        return up.getvalue()
    choice = st.selectbox(
        f"…or a sample for {label.lower()}", SAMPLES, index=SAMPLES.index(default_sample), key=f"{key}_sample"
    )
    return _sample(choice)


def _verify_tab(st, rec) -> None:
    from deepapps import DeepAppsError
    from deepapps.runtime.images import load_image

    from .results import VerifyResult

    a = _image_input(st, "First photo", "faces_verify_a", "astronaut")
    b = _image_input(st, "Second photo", "faces_verify_b", "astronaut (flipped)")
    if st.button("Verify", key="faces_verify_go"):
        try:
            pa, pb = load_image(a), load_image(b)
            v = rec.verify(pa, pb)
        except DeepAppsError as exc:
            st.error(str(exc))
            return
        res = VerifyResult(
            distance=v.distance, same=v.same, threshold=v.threshold, metric=v.metric,
            face_a=v.face_a, face_b=v.face_b, reason=v.reason, image_a=pa, image_b=pb,
        )  # fmt: skip
        if v.distance is None:
            st.warning(v.reason)
        elif v.same:
            st.success(f"Same person: distance {v.distance:.3f} < {v.threshold}")
        else:
            st.info(f"Different people: distance {v.distance:.3f} ≥ {v.threshold}")
        st.image(res.plot(), caption="largest face of each photo")


def _gallery_tab(st, gallery) -> None:
    from deepapps import DeepAppsError

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
            try:
                report = gallery.enroll(name.strip(), images)
                st.success(
                    f"{name}: {report.added} face(s) added, {report.unchanged} already enrolled"
                    + (f", no face in {len(report.no_face)} photo(s)" if report.no_face else "")
                )
            except DeepAppsError as exc:
                st.error(str(exc))
    st.subheader("People")
    people = gallery.list()
    if not people:
        st.markdown(f"The gallery `{gallery.path}` is empty.")
    else:
        rows = "\n".join(f"| {p.name} | {p.embeddings} |" for p in people)
        st.markdown(f"| name | faces |\n|---|---|\n{rows}")
        who = st.selectbox("Delete", [p.name for p in people], key="faces_delete_name")
        if st.button("Delete", key="faces_delete_go"):
            n = gallery.remove(who)
            st.success(f"Removed {who} ({n} face(s))")
            st.rerun()


def _search_tab(st, gallery) -> None:
    from deepapps import DeepAppsError

    img = _image_input(st, "Photo to search", "faces_search", "astronaut (flipped)")
    k = st.slider("Results", 1, 10, 5, key="faces_search_k")
    if st.button("Search", key="faces_search_go"):
        try:
            from deepapps.runtime.images import load_image

            pil = load_image(img)
            faces = gallery.recognizer.embed(pil)
        except DeepAppsError as exc:
            st.error(str(exc))
            return
        if not faces:
            st.warning("No face found in this photo.")
            return
        if len(gallery) == 0:
            st.warning("The gallery is empty: enroll someone first.")
            return
        matches = gallery.search_embedding(faces[0].embedding, k)
        best = matches[0]
        if best.same:
            st.success(f"Best match: {best.name} (distance {best.distance:.3f})")
        else:
            st.info(f"Nobody under the threshold; closest {best.name} (distance {best.distance:.3f})")
        rows = "\n".join(f"| {m.name} | {m.distance:.4f} | {'yes' if m.same else 'no'} |" for m in matches)
        st.markdown(f"| name | distance | match |\n|---|---|---|\n{rows}")


def _video_tab(st, rec, gallery) -> None:
    from deepapps import DeepAppsError

    from .evaluate import make_face_video
    from .video import process_video

    up = st.file_uploader("Video file", type=["mp4", "avi", "mov", "mkv", "webm"], key="faces_video_upload")
    use_sample = st.checkbox("Use a synthetic 640x480 sample clip (2 s)", key="faces_video_sample")
    if st.button("Process video", key="faces_video_go"):
        tmp = Path(tempfile.mkdtemp(prefix="deepapps-faces-ui-"))
        if up is not None:
            src = tmp / f"input{Path(up.name).suffix or '.mp4'}"
            src.write_bytes(up.getvalue())
        elif use_sample:
            src = make_face_video(tmp / "sample.mp4", frames=50)
        else:
            st.warning("Upload a video or tick the sample clip.")
            return
        try:
            with st.spinner("Processing frames…"):
                res = process_video(
                    src, rec, gallery=gallery if len(gallery) else None, out=tmp / "faces.mp4", progress=False
                )
        except DeepAppsError as exc:
            st.error(str(exc))
            return
        who = ", ".join(f"{k} ({v} frames)" for k, v in res.identities.items()) or "nobody from the gallery"
        st.success(
            f"{res.frames} frames at {res.fps:.1f} fps end to end ({res.processing_fps:.1f} fps processing); "
            f"{res.faces_per_frame:.2f} faces per frame; seen: {who}; blinks: {res.blinks}"
        )
        if res.last_frame is not None:
            st.image(res.last_frame, caption="last annotated frame")
        if res.output:
            data = Path(res.output).read_bytes()
            st.video(data)
            st.download_button(
                "Download the annotated video", data, file_name="faces.mp4", key="faces_video_dl"
            )
