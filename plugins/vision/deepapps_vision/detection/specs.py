"""Registration of object detection and the ``scenes`` dataset (metadata only: nothing heavy imported).

Every option of every verb is declared here, once: the core parses and checks them (CLI, Python
API, UI) before anything loads, and the code receives each one explicitly, defaults filled in.
"""

from __future__ import annotations

import json
from pathlib import Path

from deepapps import DatasetSpec, ModelCard, ModelSpec, Option, TaskSpec, UIPageSpec

TASK = "object-detection"
BUNDLED = "yolo11n-half-scenes.safetensors"
_CARD_FILE = Path(__file__).parent / "yolo11n-half-scenes.card.json"
SCENES_CLASSES = ("duck", "teddy", "lego", "soccer_ball", "mug", "block")
TRACKERS = ("bytetrack.yaml", "botsort.yaml")
EXPORT_FORMATS = ("onnx", "safetensors")  # formats whose export is checked against PyTorch
MAX_IMGSZ = 4096  # 4096x4096 letterboxed input: about 1 GB of activations for yolo11n on CPU

TRUST_WEIGHTS = Option(
    "trust_weights",
    "bool",
    False,
    "allow pickled weights (.pt/.pth/.torchscript): loading one runs any code it contains, so only for "
    "files you made or fully trust; .safetensors, .onnx and .yaml never need it",
    when="load",
)
PROGRESS = Option("progress", "bool", True, "show a progress bar")

#: Per-image options: shared by ``run``, the Python API and the UI.
IMAGE_OPTIONS = (
    Option("conf", "float", 0.25, "confidence threshold: boxes below it are dropped", min=0, max=1),
    Option("iou", "float", 0.7, "IoU above which non-maximum suppression merges two boxes", min=0, max=1),
    Option(
        "classes",
        "str",
        None,
        "keep only these classes: names or ids, comma-separated (not set: all)",
        multiple=True,
    ),
    Option(
        "imgsz",
        "int",
        None,
        "inference size in pixels (rounded up to a multiple of 32); not set: the size the model was "
        "trained at (320 for the bundled model), else 640",
        min=32,
        max=MAX_IMGSZ,
    ),
    Option("max_det", "int", 300, "at most this many boxes per image", min=1, max=10_000),
)

VIDEO_OPTIONS = (
    Option("track", "bool", False, "videos: follow objects from frame to frame (track ids, distinct counts)"),
    Option(
        "tracker",
        "str",
        "bytetrack.yaml",
        "videos with --track: bytetrack.yaml, botsort.yaml or your own tracker yaml file",
    ),
    Option(
        "max_frames", "int", None, "videos: stop after N processed frames; not set: the whole video", min=1
    ),
    Option("stride", "int", 1, "videos: process every N-th frame", min=1, max=10_000),
    Option(
        "keep_frames",
        "bool",
        False,
        "videos: keep every frame's result in memory (frame_results); else the first and the last only",
    ),
)

RUN_OPTIONS = (
    *IMAGE_OPTIONS,
    *VIDEO_OPTIONS,
    Option(
        "out",
        "path",
        None,
        "videos: the annotated copy, an .mp4 file or a folder for <input>_annotated.mp4 (not set: "
        "runs/object-detection/, existing files kept); --export: the exported model file or a folder",
    ),
    Option(
        "export",
        "str",
        None,
        "export the model and check the copy against PyTorch on the inputs (an ExportResult): onnx, or "
        "safetensors (deepapps' pickle-free format; the way to make a safe copy of a trusted .pt)",
        choices=EXPORT_FORMATS,
    ),
    TRUST_WEIGHTS,
)

SCENE_OPTIONS = (
    Option(
        "scene_count", "int", 1500, "--dataset scenes: scenes to render (or reuse)", min=10, max=1_000_000
    ),
    Option("scene_seed", "int", 0, "--dataset scenes: seed of the rendered dataset", min=0),
    Option("scene_size", "int", 320, "--dataset scenes: image size in pixels", min=32, max=2048),
)

TRAIN_OPTIONS = (
    Option(
        "arch",
        "str",
        "yolo11n.yaml",
        "architecture when training from scratch (no --model): an ultralytics model yaml "
        "(yolo11n.yaml, yolo11s.yaml, ...) or yolo11n-half.yaml, which ships with deepapps",
    ),
    Option("epochs", "int", 30, "training epochs (an upper bound when --hours is set)", min=1, max=10_000),
    Option(
        "hours",
        "float",
        None,
        "wall-time budget in hours; ultralytics re-fits the schedule after the first epoch",
        min=0.001,
        max=10_000,
    ),
    Option("imgsz", "int", 320, "training image size in pixels", min=32, max=MAX_IMGSZ),
    Option("batch", "int", 16, "images per batch", min=1, max=4096),
    Option(
        "nbs",
        "int",
        None,
        "nominal batch size for loss/weight-decay scaling; not set: ultralytics' 64",
        min=1,
    ),
    Option(
        "workers",
        "int",
        None,
        "data-loading processes, honoured on CPU too (ultralytics alone forces 0 there); not set: 0 on CPU, 2 on GPU",
        min=0,
        max=64,
    ),
    Option("patience", "int", 100, "stop after this many epochs without improvement", min=0),
    Option("seed", "int", 0, "training seed", min=0),
    Option(
        "optimizer",
        "str",
        "auto",
        "optimizer",
        choices=("auto", "SGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop", "MuSGD"),
    ),
    Option(
        "lr0",
        "float",
        None,
        "initial learning rate; not set: ultralytics' choice for the optimizer",
        min=0,
        max=10,
    ),
    Option("warmup_epochs", "float", None, "warm-up epochs; not set: ultralytics' 3", min=0, max=1000),
    Option(
        "close_mosaic", "int", None, "turn mosaic augmentation off for the last N epochs; not set: 10", min=0
    ),
    Option("mosaic", "float", None, "mosaic augmentation probability; not set: 1.0", min=0, max=1),
    Option(
        "cache",
        "str",
        None,
        "cache decoded images in ram or on disk; not set: no cache",
        choices=("ram", "disk"),
    ),
    Option("val", "bool", True, "validate after every epoch (--no-val: once, after the last)"),
    Option("plots", "bool", True, "let ultralytics draw its own curves and label plots"),
    *SCENE_OPTIONS,
    TRUST_WEIGHTS,
    PROGRESS,
)

EVAL_OPTIONS = (
    Option("conf", "float", 0.001, "confidence threshold (0.001: the usual mAP protocol)", min=0, max=1),
    Option("iou", "float", 0.7, "NMS IoU", min=0, max=1),
    IMAGE_OPTIONS[3],  # imgsz
    Option(
        "ultralytics_val", "bool", True, "also run ultralytics' own val on the same images and report both"
    ),
    *SCENE_OPTIONS,
    TRUST_WEIGHTS,
    PROGRESS,
)

BENCH_OPTIONS = (
    Option("images", "int", 8, "rendered scenes timed per round", min=1, max=1000),
    Option("rounds", "int", 3, "timing rounds (the order of the timed paths alternates)", min=1, max=100),
    Option("sizes", "int", (320, 640), "inference sizes to time", min=32, max=MAX_IMGSZ, multiple=True),
    Option("onnx", "bool", True, "also time an ONNX Runtime export against PyTorch"),
    Option(
        "cold_runs",
        "int",
        3,
        "cold starts of `deepapps run` and of `yolo predict` timed as fresh processes, alternating (0: skip)",
        min=0,
        max=50,
    ),
    TRUST_WEIGHTS,
)


def _card() -> ModelCard:
    data = json.loads(_CARD_FILE.read_text()) if _CARD_FILE.exists() else {}
    return ModelCard(
        summary=data.get(
            "summary",
            "YOLO11n at half width (yolo11n-half.yaml) trained from scratch on the rendered `scenes` dataset; "
            f"detects {', '.join(SCENES_CLASSES)}.",
        ),
        params=data.get("params"),
        license="AGPL-3.0 (ultralytics architecture); weights trained here on generated data",
        training_data=data.get("training_data", "scenes: pybullet renders, seed 0, 1500 images at 320 px"),
        metrics=data.get("metrics", {}),
        metrics_command=data.get("metrics_command", ""),
        training_command=data.get("training_command", ""),
        limitations=data.get(
            "limitations",
            "Knows only the six scenes classes, rendered with TinyRenderer; expect poor transfer to real "
            "photos. For COCO classes pass an ultralytics weights file you trust (--model yolo11n.pt --trust-weights).",
        ),
    )


def tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name=TASK,
            title="Object detection (YOLO)",
            domain="vision",
            runner="deepapps_vision.detection.detector:make_runner",
            default_model="yolo11n-half-scenes",
            default_dataset="scenes",
            description="Boxes, classes and confidences with ultralytics YOLO; video tracking; ONNX export.",
            inputs="image path, folder, PIL image, numpy array, or video file",
            outputs="boxes (xyxy), confidences, class ids and names; annotated image",
            aliases=("detect", "detection", "yolo"),
            train="deepapps_vision.detection.train:train",
            evaluate="deepapps_vision.detection.evaluate:evaluate",
            bench="deepapps_vision.detection.bench:bench",
            options=RUN_OPTIONS,
            train_options=TRAIN_OPTIONS,
            eval_options=EVAL_OPTIONS,
            bench_options=BENCH_OPTIONS,
            input_kind="media",
            precisions=("fp32", "fp16"),
        )
    ]


def models() -> list[ModelSpec]:
    path = Path(__file__).parent / BUNDLED
    return [
        ModelSpec(
            name="yolo11n-half-scenes",
            task=TASK,
            source=f"bundled:deepapps_vision/detection/{BUNDLED}",
            card=_card(),
            files=(BUNDLED,),
            size_mb=round(path.stat().st_size / 1e6, 2) if path.exists() else None,
        )
    ]


def datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="scenes",
            task=TASK,
            loader="deepapps_vision.scenes.dataset:load_split",
            splits=("train", "val", "test"),
            license="CC0 renders; meshes from pybullet_data (zlib), photos from scikit-image/scikit-learn",
            description=(
                "Rendered pybullet scenes (duck, teddy, lego, soccer_ball, mug, block + distractors) on "
                "tables, trays and floors before real photos; exact boxes and instance masks, YOLO format."
            ),
            size="generated: default 1500 images at 320 px (1200/150/150), about 5 minutes on 2 cores",
        )
    ]


def ui_pages() -> list[UIPageSpec]:
    return [
        UIPageSpec(
            task=TASK,
            title="Object detection",
            render="deepapps_vision.detection.page:render",
            icon="📦",
        )
    ]
