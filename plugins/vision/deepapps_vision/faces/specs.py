"""Registrations of the face-recognition sub-domain (gathered by ``deepapps_vision.plugin``).

Nothing heavy is imported here: every callable is a lazy ``"module:function"`` string.
"""

from __future__ import annotations

from deepapps import DatasetSpec, ModelCard, ModelSpec, Option, TaskSpec, UIPageSpec

PKG = "deepapps_vision.faces"
TASK = "face-recognition"
RESNET_FILE = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
DETECTORS = ("hog", "cnn")

#: Options of the recognizer itself (detection and landmarks): shared by ``deepapps run``, the
#: ``deepapps faces`` commands and :class:`~deepapps_vision.faces.FaceRecognizer`.
RECOGNIZER_OPTIONS = (
    Option(
        "detector",
        "str",
        "hog",
        "face detector: hog (fast, frontal faces) or cnn (dlib's MMOD CNN: "
        "more poses, about 10x slower on CPU)",
        choices=DETECTORS,
    ),
    Option(
        "landmarks",
        "int",
        68,
        "landmark points per face: 68 (also gives head pose and eye attributes) or 5",
        choices=(5, 68),
    ),
    Option(
        "upsample",
        "int",
        1,
        "times the image is doubled before detection: finds smaller faces, about 4x the cost per step",
        min=0,
        max=3,
    ),
    Option(
        "min_score",
        "float",
        0.3,
        "HOG detection score cut-off (scores run from about -1 to 3; the CNN keeps every detection)",
        min=-1,
        max=5,
    ),
)

#: Options that compare faces with a gallery or with each other.
MATCH_OPTIONS = (
    Option(
        "gallery",
        "path",
        None,
        "face gallery (.db, made by `deepapps faces enroll`) that names "
        "each face (identity and distance); not set: no identities",
    ),
    Option(
        "threshold",
        "float",
        None,
        "distance under which two faces are the same person; not set: the embedder's own (0.6 for dlib)",
        min=0,
    ),
    Option(
        "top_k",
        "int",
        1,
        "with a gallery: the nearest identities listed per face (the first decides the identity)",
        min=1,
        max=100,
    ),
)

VIDEO_OPTIONS = (
    Option(
        "out",
        "path",
        None,
        "videos: the annotated copy, an .mp4 file or a folder for "
        "<input>_faces.mp4 (not set: runs/face-recognition/; existing files there are kept)",
    ),
    Option(
        "detect_width",
        "int",
        480,
        "videos: full-frame detection runs on a copy this many pixels wide",
        min=64,
        max=4096,
    ),
    Option(
        "redetect_every",
        "int",
        5,
        "videos: search the whole frame every N frames, in between only around tracked faces",
        min=1,
        max=1000,
    ),
    Option(
        "reembed_every", "int", 10, "videos: embed each tracked face again every N frames", min=1, max=1000
    ),
    Option("max_frames", "int", None, "videos: stop after N frames; not set: the whole video", min=1),
)

PROGRESS = Option("progress", "bool", True, "show progress bars (videos, eval, bench)")

RUN_OPTIONS = (
    *RECOGNIZER_OPTIONS,
    *MATCH_OPTIONS,
    Option("embed", "bool", False, "compute each face's embedding even without a gallery"),
    Option("include_embeddings", "bool", False, "put each face's embedding in the JSON (implies --embed)"),
    *VIDEO_OPTIONS,
    PROGRESS,
)

EVAL_OPTIONS = (
    Option(
        "size", "int", 100, "pixels the 25x25 LFW crops are upsampled to before detection", min=25, max=1000
    ),
    Option(
        "detectors",
        "str",
        DETECTORS,
        "detectors whose recall and false-positive rate are measured",
        choices=DETECTORS,
        multiple=True,
    ),
    PROGRESS,
)

BENCH_OPTIONS = (
    Option(
        "identities",
        "int",
        10_000,
        "synthetic identities enrolled for the search figures",
        min=1,
        max=1_000_000,
    ),
    Option("queries", "int", 300, "timed search queries", min=1, max=100_000),
    Option(
        "video_frames",
        "int",
        150,
        "frames of the synthetic 640x480 clip timed for the video figures",
        min=1,
        max=10_000,
    ),
    PROGRESS,
)

#: Declared defaults by name, for functions that are also called directly from Python.
DEFAULTS = {o.name: o.default for o in (*RUN_OPTIONS, *EVAL_OPTIONS, *BENCH_OPTIONS)}


def tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name=TASK,
            title="Face recognition (detect, landmarks, verify, search a gallery)",
            domain="vision",
            runner=f"{PKG}.runner:make_runner",
            default_model="dlib-resnet-face",
            description=(
                "dlib HOG or CNN (MMOD) face detection, 5/68-point landmarks, head pose and eye aspect "
                "ratio, 128-D descriptors, 1:1 verification and 1:N search over a SQLite gallery; "
                "images and videos."
            ),
            inputs="images or videos (files or folders; from Python also bytes, PIL images, arrays)",
            outputs="faces: box, score, landmarks, attributes (yaw/pitch/roll, ear), identity, distance",
            aliases=("faces", "face-verification"),
            default_dataset="lfw-subset",
            evaluate=f"{PKG}.evaluate:evaluate",
            bench=f"{PKG}.evaluate:bench",
            options=RUN_OPTIONS,
            eval_options=EVAL_OPTIONS,
            bench_options=BENCH_OPTIONS,
            input_kind="media",
            check_run_options=f"{PKG}.checks:check_run",
        )
    ]


def models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name="dlib-resnet-face",
            task="face-recognition",
            source=f"pypi:face-recognition-models==0.3.0#{RESNET_FILE}",
            load=f"{PKG}.models:load_dlib_resnet",
            files=(RESNET_FILE,),
            sha256={
                "dlib_face_recognition_resnet_model_v1.dat": (
                    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
                )
            },
            size_mb=22.5,
            aliases=("dlib", "dlib-resnet"),
            card=ModelCard(
                summary=(
                    "dlib's face descriptor (dlib_face_recognition_resnet_model_v1): a ResNet with 29 "
                    "convolutional layers mapping a 150x150 aligned face chip to a 128-D vector; two "
                    "faces are the same person when the Euclidean distance is under 0.6. Used with dlib's "
                    "HOG or MMOD CNN detector and its 5/68-point landmark predictors (same package)."
                ),
                params=None,
                license="CC0-1.0 (face-recognition-models 0.3.0 on PyPI; models by Davis E. King, dlib)",
                training_data=(
                    "About 3 million faces of about 7,485 identities (VGG Face, FaceScrub and web "
                    "scraped images), as published by dlib's author; not retrained here."
                ),
                metrics={
                    "lfw_accuracy_published": 0.9938,
                    "note": (
                        "99.38% on the LFW benchmark as published by dlib (dlib.net blog, 2017); not "
                        "re-measured here (LFW is not available offline). Measured figures: "
                        "docs/benchmarks.md"
                    ),
                },
                metrics_command="deepapps eval face-recognition --json",
                training_command="not trained here: pretrained by dlib (see dlib's dnn_metric_learning example)",
                limitations=(
                    "Trained mostly on adult faces from the web; accuracy drops for children, strong "
                    "poses and low resolution. HOG detection finds frontal faces of about 80 px or more."
                ),
                citation="Davis E. King, Dlib-ml: A Machine Learning Toolkit, JMLR 10, 2009.",
            ),
        )
    ]


def datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="lfw-subset",
            task="face-recognition",
            loader=f"{PKG}.data:load_lfw_subset",
            splits=("test",),
            license="LFW (research use); shipped in the scikit-image wheel (skimage.data.lfw_subset)",
            description=(
                "100 LFW face crops and 100 non-face patches at 25x25 grayscale from scikit-image; "
                "used for detection recall / false positives and verification robustness."
            ),
            size="200 images",
        )
    ]


def ui_pages() -> list[UIPageSpec]:
    return [
        UIPageSpec(task="face-recognition", title="Face recognition", render=f"{PKG}.ui:render", icon="🙂")
    ]


def commands(cli) -> None:
    """Add ``deepapps faces enroll|search|verify|list|remove``."""
    from .cli import faces

    cli.add_command(faces)
