"""Face recognition with dlib's real models: detection, landmarks, attributes, embeddings, verify.

Images: scikit-image's astronaut photo (one real face), its coffee photo (no face) and the
``lfw_subset`` crops (100 faces, 100 non-faces at 25x25, upsampled).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("dlib")
from skimage import data as skdata  # noqa: E402

import deepapps  # noqa: E402
from deepapps import InputError, ModelCard, ModelSpec, hookimpl  # noqa: E402

ASTRONAUT_BOX = (175, 76, 265, 166)  # HOG, upsample 1, measured once


@pytest.fixture(scope="module")
def fr():
    from deepapps_vision.faces import FaceRecognizer

    return FaceRecognizer()


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


@pytest.fixture(scope="module")
def astronaut_faces(fr, astronaut):
    return fr.embed(astronaut)


@pytest.fixture(scope="module")
def lfw():
    from deepapps_vision.faces.data import load_lfw_subset

    return load_lfw_subset("test")


def _inside(points: np.ndarray, box, margin: float = 0.15) -> bool:
    x1, y1, x2, y2 = box
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    return bool(
        np.all(points[:, 0] >= x1 - mx)
        and np.all(points[:, 0] <= x2 + mx)
        and np.all(points[:, 1] >= y1 - my)
        and np.all(points[:, 1] <= y2 + my)
    )


def test_astronaut_has_one_face_with_68_landmarks_inside_its_box(astronaut_faces):
    assert len(astronaut_faces) == 1
    face = astronaut_faces[0]
    assert all(abs(a - b) <= 8 for a, b in zip(face.box, ASTRONAUT_BOX, strict=True)), face.box
    assert face.score > 0.5
    assert face.landmarks.shape == (68, 2)
    assert _inside(face.landmarks, face.box)
    # anatomy: eyes above the nose tip above the mouth, left eye left of right eye (image coords)
    lm = face.landmarks
    assert lm[36:42, 1].mean() < lm[30, 1] < lm[48:68, 1].mean()
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()


def test_five_point_landmarks(astronaut):
    from deepapps_vision.faces import FaceRecognizer

    faces = FaceRecognizer(landmarks=5).detect(astronaut)
    assert len(faces) == 1
    assert faces[0].landmarks.shape == (5, 2)
    assert _inside(faces[0].landmarks, faces[0].box)
    assert faces[0].attributes == {}  # pose and eyes need the 68 points


def test_embedding_shape_norm_and_alignment(fr, astronaut, astronaut_faces):
    emb = astronaut_faces[0].embedding
    assert emb.shape == (128,) and emb.dtype == np.float32
    assert np.all(np.isfinite(emb))
    assert 0.5 < float(np.linalg.norm(emb)) < 3.0
    chips = fr.align(astronaut, astronaut_faces)
    assert len(chips) == 1 and chips[0].shape == (150, 150, 3) and chips[0].dtype == np.uint8
    # embedding the same chip again is deterministic
    again = fr.embedder.embed(chips)[0]
    assert float(np.linalg.norm(again - emb)) < 1e-5


def test_verify_same_and_different(fr, astronaut, lfw):
    from deepapps_vision.faces.data import upsample_gray

    same = fr.verify(astronaut, np.ascontiguousarray(astronaut[:, ::-1]))
    assert same.same and same.distance < 0.6 and same.threshold == 0.6
    other = upsample_gray(lfw["images"][0], 150)
    diff = fr.verify(astronaut, other)
    assert diff.distance is not None and diff.distance > 0.6 and not diff.same
    assert json.dumps(diff.to_dict())


def test_no_face_is_a_clear_empty_result(fr):
    coffee = skdata.coffee()
    assert fr.detect(coffee) == []
    assert fr.embed(coffee) == []
    assert fr.embedding(coffee) is None
    v = fr.verify(skdata.astronaut(), coffee)
    assert v.distance is None and v.same is False and "no face found in the second image" in v.reason


def test_bad_images_raise_input_errors(fr, tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is not a jpeg")
    with pytest.raises(InputError, match="cannot be decoded"):
        fr.detect(str(fake))
    with pytest.raises(InputError, match="file not found"):
        fr.detect(str(tmp_path / "missing.png"))
    with pytest.raises(InputError):
        fr.detect(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(InputError, match="not one of hog, cnn"):
        type(fr)(detector="haar")


def test_lfw_subset_faces_found_and_non_faces_not(fr, lfw):
    from deepapps_vision.faces.data import upsample_gray

    faces = [len(fr.detect(upsample_gray(im, 100), attributes=False)) for im in lfw["images"][:12]]
    non_faces = [len(fr.detect(upsample_gray(im, 100), attributes=False)) for im in lfw["images"][100:112]]
    assert sum(n >= 1 for n in faces) >= 10, faces
    assert sum(n >= 1 for n in non_faces) <= 1, non_faces


def test_head_pose_and_eye_aspect_ratio(fr, astronaut, astronaut_faces):
    import cv2

    a = astronaut_faces[0].attributes
    assert set(a) >= {"yaw", "pitch", "roll", "ear_left", "ear_right", "ear", "eyes_closed"}
    assert abs(a["yaw"]) < 20 and abs(a["roll"]) < 10  # a near-frontal, upright portrait
    assert 0.25 < a["ear"] < 0.45 and a["eyes_closed"] is False  # eyes open
    flipped = fr.detect(np.ascontiguousarray(astronaut[:, ::-1]))[0].attributes
    assert np.sign(flipped["yaw"]) == -np.sign(a["yaw"])  # mirror image turns the other way
    rot = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((256, 256), 15, 1.0), (512, 512))
    rolled = fr.detect(rot)[0].attributes  # rotated 15 degrees counter-clockwise
    assert -22 < rolled["roll"] - a["roll"] < -8


def test_eye_aspect_ratio_drops_when_the_eye_closes():
    from deepapps_vision.faces.attributes import eye_aspect_ratio

    open_eye = np.array([(0, 0), (3, -2), (7, -2), (10, 0), (7, 2), (3, 2)], float)
    closed = open_eye * np.array([1.0, 0.1])
    assert eye_aspect_ratio(open_eye) == pytest.approx(0.4)
    assert eye_aspect_ratio(closed) == pytest.approx(0.04)


def test_cnn_detector_finds_the_astronaut():
    from deepapps_vision.faces import FaceRecognizer

    crop = np.ascontiguousarray(skdata.astronaut()[0:320, 60:380])  # face about 90 px
    faces = FaceRecognizer(detector="cnn", upsample=0).detect(crop)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box
    # the HOG box of the full photo, shifted by the crop
    assert abs((x1 + x2) / 2 - (220 - 60)) < 15 and abs((y1 + y2) / 2 - 121) < 15
    assert faces[0].landmarks.shape == (68, 2)


def test_task_runner_results_json_and_plot(astronaut):
    runner = deepapps.load("face-recognition", device="cpu")
    res = runner(astronaut)
    d = json.loads(res.to_json())
    assert d["task"] == "face-recognition" and d["model"] == "dlib-resnet-face" and d["count"] == 1
    assert len(d["faces"][0]["landmarks"]) == 68 and "yaw" in d["faces"][0]["attributes"]
    assert list(d["timings"]) == ["load", "preprocess", "detect", "embed", "search", "total"]
    assert d["source"] == "<array 512x512x3>"
    img = res.plot()
    assert img.size == (512, 512)
    assert np.asarray(img).astype(int).sum() != np.asarray(astronaut).astype(int).sum()  # something drawn
    none = runner(skdata.coffee())
    assert none.count == 0 and none.message == "no face found" and none.summary() == "no face found"
    with_emb = runner(astronaut, include_embeddings=True)
    assert len(with_emb.to_dict()["faces"][0]["embedding"]) == 128
    with pytest.raises(InputError, match="unknown option"):
        runner(astronaut, detecor="cnn")
    with pytest.raises(InputError, match="no face gallery at"):
        runner(astronaut, gallery="/nonexistent/gallery.db")


class _MeanColourEmbedder:
    """A stand-in third-party embedder: 3-D mean colour of the aligned chip, cosine distance."""

    name = "mean-colour-face"
    dim = 3
    chip_size = 64
    chip_padding = 0.25
    metric = "cosine"
    threshold = 0.01

    def embed(self, chips):
        return np.stack([c.reshape(-1, 3).mean(0) for c in chips]).astype(np.float32)


def load_mean_colour(spec, device, **options):
    return _MeanColourEmbedder()


class _EmbedderPlugin:
    @hookimpl
    def register_models(self, register):
        register(
            ModelSpec(
                name="mean-colour-face",
                task="face-recognition",
                source="builtin:",
                load=load_mean_colour,
                card=ModelCard(summary="test embedder"),
            )
        )


def test_a_plugin_can_register_its_own_embedder(astronaut, tmp_path):
    deepapps.register_plugin(_EmbedderPlugin(), "faces-test-embedder")
    try:
        runner = deepapps.load("face-recognition", model="mean-colour-face", device="cpu")
        res = runner(astronaut, embed=True, include_embeddings=True)
        assert res.model == "mean-colour-face"
        assert len(res.to_dict()["faces"][0]["embedding"]) == 3
        from deepapps_vision.faces import FaceRecognizer, Gallery

        rec = FaceRecognizer(deepapps.registry.model("mean-colour-face"))
        g = Gallery(tmp_path / "g.db", recognizer=rec)
        g.enroll("eileen", [astronaut])
        assert g.matrix()[0].shape == (1, 3)
        assert g.search(astronaut, 1)[0].name == "eileen"
    finally:
        deepapps.unregister_plugin("faces-test-embedder")


def test_tracker_keeps_identities_and_counts_blinks():
    from deepapps_vision.faces import Face
    from deepapps_vision.faces.video import FaceTracker

    tracker = FaceTracker()
    ears = [0.32, 0.31, 0.12, 0.10, 0.30, 0.33, 0.15, 0.31]
    tracks = []
    for i, ear in enumerate(ears):
        moving = Face(box=(100 + 3 * i, 50, 200 + 3 * i, 150), score=1.0, attributes={"ear": ear})
        other = Face(box=(400, 300, 480, 380), score=1.0, attributes={"ear": 0.3})
        tracks.append(tracker.update([moving, other]))
    assert all(t[0] is tracks[0][0] for t in tracks)  # the moving face stays one track
    assert tracks[0][0] is not tracks[0][1]
    assert tracks[-1][0].blinks == 2 and tracks[-1][1].blinks == 0 and tracker.blinks == 2
    far = tracker.update([Face(box=(0, 300, 50, 350), score=1.0)])
    assert far[0] is not tracks[-1][0] and len(tracker.tracks) == 1  # a new face is a new track
