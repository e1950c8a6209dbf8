"""Registrations of the face-recognition sub-domain (gathered by ``deepapps_vision.plugin``).

Nothing heavy is imported here: every callable is a lazy ``"module:function"`` string.
"""

from __future__ import annotations

from deepapps import DatasetSpec, ModelCard, ModelSpec, TaskSpec, UIPageSpec

PKG = "deepapps_vision.faces"
RESNET_FILE = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"


def tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="face-recognition",
            title="Face recognition (detect, landmarks, verify, search a gallery)",
            domain="vision",
            runner=f"{PKG}.runner:make_runner",
            default_model="dlib-resnet-face",
            description=(
                "dlib HOG or CNN (MMOD) face detection, 5/68-point landmarks, head pose and eye aspect "
                "ratio, 128-D descriptors, 1:1 verification and 1:N search over a SQLite gallery; "
                "images and videos."
            ),
            inputs="image (path, bytes, PIL, array) or video file; options --gallery, --detector hog|cnn",
            outputs="faces: box, score, landmarks, attributes (yaw/pitch/roll, ear), identity, distance",
            aliases=("faces", "face-verification"),
            default_dataset="lfw-subset",
            evaluate=f"{PKG}.evaluate:evaluate",
            bench=f"{PKG}.evaluate:bench",
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
