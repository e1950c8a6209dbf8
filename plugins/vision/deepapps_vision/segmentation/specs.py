"""Registration of promptable segmentation (SAM): task, bundled model, UI page. Metadata only.

Every option of every verb is declared here once; the core checks them before anything loads
and passes each one explicitly to the runner, ``train``, ``evaluate`` and ``bench``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deepapps import ModelCard, ModelSpec, Option, TaskSpec, UIPageSpec

TASK = "segmentation"
MODEL = "sam-tiny-scenes"
BUNDLED = "sam-tiny-scenes.safetensors"
_CARD_FILE = Path(__file__).parent / "sam-tiny-scenes.card.json"
DATASETS = ("scenes", "coins")

PROGRESS = Option("progress", "bool", True, "show a progress bar")
BOXES_MODEL = Option(
    "boxes_model", "str", None, "model of the --boxes-from task (not set: that task's default)"
)

#: Filters of "segment everything" per kind of model. SAM's own values suit the official checkpoints; the small
#: models trained here predict lower IoUs and fuzzier edges (96 x 96 logits), so SAM's filters drop every
#: mask they make. The small-model values were measured on 10 scenes *val* renders (docs/segmentation.md).
#: ``remask`` makes each kept mask again from its box through zoom-in and refinement: off for the official
#: checkpoints (SAM as published), on for the small models, whose grid masks are coarse one-point guesses.
EVERYTHING_SAM = {
    "points_per_side": 32,
    "pred_iou_thresh": 0.88,
    "stability_thresh": 0.95,
    "iou": 0.7,
    "remask": False,
}
EVERYTHING_SMALL = {
    "points_per_side": 12,
    "pred_iou_thresh": 0.5,
    "stability_thresh": 0.6,
    "iou": 0.5,
    "remask": True,
}

#: Refinement of prompted masks (refine.py) per kind of model: none for the official checkpoints (SAM as
#: published); for the small models the guided filter at refine.Refinement's radius and eps (5 mask-logit cells,
#: 1e-5) with holes up to 25 cells filled, chosen on scenes *val* renders (docs/segmentation.md). A checkpoint's
#: "refine" metadata wins over these.
REFINE_SAM = {"method": "none"}
REFINE_SMALL = {"method": "guided", "holes": 25.0, "threshold": 0.4}

#: Zoom-in on prompted objects (zoom.py) per kind of model: off for the official checkpoints (SAM as published);
#: on for the small models, at zoom.Zoom's magnification and context, chosen on scenes *val* renders
#: (docs/segmentation.md). A checkpoint's "zoom" metadata wins over these.
ZOOM_SAM = {"mode": "off"}
ZOOM_SMALL = {"mode": "on"}

#: Points given to the decoder with mask_input (a next click): every point for the official checkpoints; for the
#: small models, trained on a first prompt and one corrective click, the first click and the latest ones, this
#: many in all, chosen on scenes *val* renders (docs/segmentation.md). A checkpoint's "max_points" wins.
MAX_POINTS_SMALL = 4

#: Which mask a corrective click keeps (clicks.py): SAM's single output for the official checkpoints; for the
#: small models the one that contradicts the fewest clicks among the decoder's four outputs and their local
#: versions, chosen on scenes *val* renders (docs/segmentation.md). A checkpoint's "click_check" wins.
CLICK_CHECKS = ("local", "masks", "off")  # clicks.py: LOCAL, MASKS, OFF
CLICK_CHECK_SMALL = "local"

#: What ``deepapps train segmentation --trainable`` may change (train.py: the parameters per choice).
TRAINABLE = ("all", "decoder", "iou-head")

MASK_OPTIONS = (
    Option(
        "refine",
        "str",
        None,
        "refine prompted masks along the image's edges: guided (a guided filter) or none (not set: the model's "
        "own; guided for sam-tiny-scenes, none for official SAM)",
        choices=("guided", "none"),
        when="load",
    ),
    Option(
        "refine_radius",
        "float",
        None,
        "guided refinement: window radius in mask-logit cells (not set: the model's own)",
        min=0.1,
        max=64,
        when="load",
    ),
    Option(
        "refine_eps",
        "float",
        None,
        "guided refinement: regularisation; larger follows the image's edges less (not set: the model's own)",
        min=1e-8,
        max=10,
        when="load",
    ),
    Option(
        "refine_holes",
        "float",
        None,
        "guided refinement: fill holes of a refined mask up to this many mask-logit cells, 0 for none (not set: "
        "the model's own)",
        min=0,
        max=1e6,
        when="load",
    ),
    Option(
        "refine_threshold",
        "float",
        None,
        "guided refinement: the filtered mask probability a mask is cut at (not set: the model's own)",
        min=0.01,
        max=0.99,
        when="load",
    ),
    Option(
        "zoom",
        "str",
        None,
        "zoom-in: segment a prompted object again on a crop around it (on) or not (off) (not set: the model's "
        "own; on for sam-tiny-scenes, off for official SAM)",
        choices=("on", "off"),
        when="load",
    ),
    Option(
        "zoom_max",
        "float",
        None,
        "zoom-in: largest magnification of a crop over the whole image (not set: the model's own)",
        min=1,
        max=64,
        when="load",
    ),
    Option(
        "zoom_context",
        "float",
        None,
        "zoom-in: context around the object on each side, in object sides (not set: the model's own)",
        min=0,
        max=16,
        when="load",
    ),
    Option(
        "max_points",
        "int",
        None,
        "with mask_input (a next click), give the decoder the first click and the latest ones, at most this "
        "many; 0 for every point (not set: the model's own; 4 for sam-tiny-scenes, every point for official "
        "SAM)",
        min=0,
        max=1000,
        when="load",
    ),
    Option(
        "click_check",
        "str",
        None,
        "after a corrective click keep the candidate mask that contradicts the fewest clicks: among the "
        "decoder's four outputs (masks), also each of them applied only around the new click (local), or "
        "SAM's single output (off) (not set: the model's own; local for sam-tiny-scenes, off for official SAM)",
        choices=CLICK_CHECKS,
        when="load",
    ),
)


def mask_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The MASK_OPTIONS among a verb's ``arguments`` (its ``locals()``: each verb takes every option as a
    parameter), as keyword arguments of ``deepapps.load("segmentation", ...)``."""
    return {option.name: arguments[option.name] for option in MASK_OPTIONS}


#: Grid prompts of "segment everything" (used when an image comes with no prompt at all). Not set: the model's
#: own default (a checkpoint's "everything" metadata, else EVERYTHING_SAM or EVERYTHING_SMALL by its size).
EVERYTHING_OPTIONS = (
    Option(
        "points_per_side",
        "int",
        None,
        "segment everything: an N x N grid of point prompts (not set: the model's own; 12 for sam-tiny-scenes, "
        "32 for official SAM)",
        min=1,
        max=128,
    ),
    Option(
        "pred_iou_thresh",
        "float",
        None,
        "segment everything: keep masks whose predicted IoU is at least this (not set: the model's own; 0.5 "
        "for sam-tiny-scenes, 0.88 for official SAM)",
        min=0,
        max=1,
    ),
    Option(
        "stability_thresh",
        "float",
        None,
        "segment everything: keep masks whose IoU between logit cut-offs -1 and +1 is at least this (not set: "
        "the model's own; 0.6 for sam-tiny-scenes, 0.95 for official SAM)",
        min=0,
        max=1,
    ),
    Option(
        "iou",
        "float",
        None,
        "segment everything: box IoU above which non-maximum suppression drops the lower-scored mask (not "
        "set: the model's own; 0.5 for sam-tiny-scenes, 0.7 for official SAM)",
        min=0,
        max=1,
    ),
    Option(
        "remask",
        "bool",
        None,
        "segment everything: make each kept mask again from its box, a box prompt through zoom-in and "
        "refinement, and drop a remade mask overlapping a better one by more than --iou (not set: the "
        "model's own; on for sam-tiny-scenes, off for official SAM; nothing to do with zoom-in and "
        "refinement both off)",
    ),
)


def everything_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The segment-everything options among a verb's ``arguments`` (``locals()``), as keyword arguments of
    ``runner.segment_everything``."""
    return {option.name: arguments[option.name] for option in EVERYTHING_OPTIONS}


RUN_OPTIONS = (
    Option("points", "float", None, "point prompts in pixels: x,y pairs (x1,y1,x2,y2,...)", multiple=True),
    Option(
        "labels",
        "int",
        None,
        "one per point: 1 object, 0 background (not set: all 1)",
        choices=(0, 1),
        multiple=True,
    ),
    Option("box", "float", None, "a box prompt in pixels: x1,y1,x2,y2", multiple=True),
    Option(
        "multimask",
        "bool",
        None,
        "return three candidate masks (best first) for an ambiguous prompt; not set: on for one point alone",
    ),
    Option(
        "mask_input",
        "object",
        None,
        "low-resolution logits of an earlier prediction (result.low_res_logits[i]), refined by new clicks",
    ),
    Option(
        "boxes_from",
        "str",
        None,
        "detect then segment: a task giving boxes (object-detection); each box prompts one labelled mask",
    ),
    BOXES_MODEL,
    Option(
        "boxes_conf",
        "float",
        None,
        "confidence threshold of the --boxes-from detector (not set: its own)",
        min=0,
        max=1,
    ),
    *EVERYTHING_OPTIONS,
    Option(
        "out",
        "path",
        None,
        "also write each mask as a PNG into this folder (<input>-<i>.png, never overwrites)",
    ),
    Option(
        "cache_size",
        "int",
        8,
        "image embeddings kept in memory, keyed by image content (LRU)",
        min=1,
        max=4096,
        when="load",
    ),
    *MASK_OPTIONS,
)

SCENE_OPTIONS = (
    Option("scene_count", "int", 1500, "scenes dataset: scenes to render (or reuse)", min=10, max=1_000_000),
    Option("scene_seed", "int", 0, "scenes dataset: seed of the rendered dataset", min=0),
    Option("scene_size", "int", 320, "scenes dataset: image size in pixels", min=32, max=2048),
)

TRAIN_OPTIONS = (
    Option(
        "arch",
        "str",
        "sam_tiny",
        "architecture when training from scratch (no --model)",
        choices=("sam_tiny", "sam_test"),
    ),
    Option("steps", "int", 1500, "optimizer steps at most", min=1, max=10_000_000),
    Option(
        "minutes",
        "float",
        None,
        "wall-time budget; the learning-rate schedule ends with whichever of steps/minutes comes first",
        min=0.01,
        max=100_000,
    ),
    Option("batch", "int", 8, "images per step", min=1, max=256),
    Option("objects", "int", 3, "objects (prompts) per image per step", min=1, max=64),
    Option(
        "clicks",
        "int",
        1,
        "corrective clicks simulated per object and step (the SAM recipe's iterations)",
        min=0,
        max=16,
    ),
    Option(
        "zoom_crops",
        "float",
        0.0,
        "share of training images replaced by a crop around one of their objects (scale augmentation "
        "for zoom-in; 0.5 did not help within an hour of CPU, docs/segmentation.md)",
        min=0,
        max=1,
    ),
    Option(
        "trainable",
        "str",
        "all",
        "what training changes: all, decoder (the prompt encoder and mask decoder; no backward pass through "
        "the image encoder) or iou-head (the IoU prediction head only: masks stay as they are, only which of "
        "three a click keeps changes); the last two fine-tune --model",
        choices=TRAINABLE,
    ),
    Option("lr", "float", 1e-3, "peak AdamW learning rate (warm-up, then cosine decay)", min=1e-7, max=1),
    Option("seed", "int", 0, "training seed", min=0),
    Option(
        "val_every",
        "int",
        150,
        "steps between validation rounds (1-click and box mIoU on the val split)",
        min=1,
    ),
    *SCENE_OPTIONS,
    PROGRESS,
)

EVAL_OPTIONS = (
    Option(
        "max_clicks",
        "int",
        20,
        "corrective clicks at most per object (clicks-to-target counts this when "
        "the target is never reached)",
        min=1,
        max=100,
    ),
    Option(
        "iou_target", "float", 0.9, "IoU an object must reach for the clicks-to-target count", min=0.01, max=1
    ),
    Option(
        "detect",
        "bool",
        True,
        "scenes: also score detect-then-segment (mask AP50-95 of detector boxes + masks)",
    ),
    BOXES_MODEL,
    Option("boxes_conf", "float", 0.05, "detect then segment: detector confidence threshold", min=0, max=1),
    Option(
        "everything",
        "bool",
        False,
        "scenes: also score segment everything (class-agnostic mask AP50-95 by predicted IoU, and the share of "
        "objects one of its masks covers at IoU >= 0.5)",
    ),
    *EVERYTHING_OPTIONS,
    *MASK_OPTIONS,
    *SCENE_OPTIONS,
    PROGRESS,
)

BENCH_OPTIONS = (
    Option("repeats", "int", 20, "timed runs per figure (the median is reported)", min=1, max=10_000),
    Option("image_size", "int", 320, "side of the rendered test image in pixels", min=32, max=4096),
    Option("everything", "bool", True, "also time segment-everything on the image"),
    *EVERYTHING_OPTIONS,
    *MASK_OPTIONS,
)


def _card() -> ModelCard:
    data = json.loads(_CARD_FILE.read_text()) if _CARD_FILE.exists() else {}
    return ModelCard(
        summary=data.get(
            "summary", "A small SAM (segment-anything classes) trained here on the scenes renders."
        ),
        params=data.get("params"),
        license="Apache-2.0 (segment-anything architecture); weights trained here on generated data",
        training_data=data.get("training_data", "scenes: pybullet renders with exact instance masks"),
        metrics=data.get("metrics", {}),
        metrics_command=data.get("metrics_command", ""),
        training_command=data.get("training_command", ""),
        limitations=data.get(
            "limitations",
            "Trained on rendered objects only; expect weak masks on real photos. Pass a sam_vit_b/l/h .pth "
            "with --model for real images.",
        ),
    )


def tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name=TASK,
            title="Promptable segmentation (SAM)",
            domain="vision",
            runner="deepapps_vision.segmentation.runner:make_runner",
            default_model=MODEL,
            default_dataset="scenes",
            description=(
                "Segment anything from clicks or a box (segment-anything's SAM); segment everything; detect then "
                "segment with a detector's boxes as prompts."
            ),
            inputs="image path, folder, PIL image or numpy array, with point/box prompts (none: segment everything)",
            outputs="binary masks with predicted IoU, COCO RLE and boxes in JSON; PNG masks; overlay picture",
            aliases=("sam", "segment"),
            train="deepapps_vision.segmentation.train:train",
            evaluate="deepapps_vision.segmentation.evaluate:evaluate",
            bench="deepapps_vision.segmentation.bench:bench",
            options=RUN_OPTIONS,
            train_options=TRAIN_OPTIONS,
            eval_options=EVAL_OPTIONS,
            bench_options=BENCH_OPTIONS,
            input_kind="image",
            precisions=("fp32", "bf16"),
        )
    ]


def models() -> list[ModelSpec]:
    path = Path(__file__).parent / BUNDLED
    return [
        ModelSpec(
            name=MODEL,
            task=TASK,
            source=f"bundled:deepapps_vision/segmentation/{BUNDLED}",
            card=_card(),
            files=(BUNDLED,),
            size_mb=round(path.stat().st_size / 1e6, 2) if path.exists() else None,
            aliases=("sam-tiny",),
        )
    ]


def ui_pages() -> list[UIPageSpec]:
    return [
        UIPageSpec(
            task=TASK, title="Segmentation (SAM)", render="deepapps_vision.segmentation.page:render", icon="✂️"
        )
    ]
