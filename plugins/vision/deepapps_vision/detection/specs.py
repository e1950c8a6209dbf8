"""Registration of object detection and the ``scenes`` dataset (metadata only: nothing heavy imported)."""

from __future__ import annotations

import json
from pathlib import Path

from deepapps import DatasetSpec, ModelCard, ModelSpec, TaskSpec, UIPageSpec

BUNDLED = "yolo11n-half-scenes.safetensors"
_CARD_FILE = Path(__file__).parent / "yolo11n-half-scenes.card.json"
SCENES_CLASSES = ("duck", "teddy", "lego", "soccer_ball", "mug", "block")


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
            "photos. For COCO classes pass any ultralytics weights file (--model yolo11n.pt).",
        ),
    )


def tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="object-detection",
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
        )
    ]


def models() -> list[ModelSpec]:
    path = Path(__file__).parent / BUNDLED
    return [
        ModelSpec(
            name="yolo11n-half-scenes",
            task="object-detection",
            source=f"bundled:deepapps_vision/detection/{BUNDLED}",
            load="deepapps_vision.detection.detector:load_model",
            card=_card(),
            files=(BUNDLED,),
            size_mb=round(path.stat().st_size / 1e6, 2) if path.exists() else None,
        )
    ]


def datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="scenes",
            task="object-detection",
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
            task="object-detection",
            title="Object detection",
            render="deepapps_vision.detection.page:render",
            icon="📦",
        )
    ]
