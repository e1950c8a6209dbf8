"""Declarations of the robotics tasks, models and options (metadata only: nothing heavy imported).

Every option of every verb is declared here once; the core checks them before anything loads and
passes each one explicitly. The functions' own defaults are taken from these declarations.
"""

from __future__ import annotations

import json
from pathlib import Path

from deepapps import ModelCard, ModelSpec, Option, TaskSpec, UIPageSpec

PICK = "pick-and-place"
WAREHOUSE = "warehouse"
CELL_MODEL = "panda-cell"
CELL_DETECTOR = "yolo11n-half-cell"
WAREHOUSE_MODEL = "warehouse-ppo-6"
PKG = "deepapps_robotics"
MODELS = Path(__file__).parent / "models"

# the cell --------------------------------------------------------------------------------------
SEED = Option("seed", "int", 0, "seed of the parts (classes, sizes, colours, poses) and the run", min=0)
CELL_OPTIONS = (
    Option("belt_speed", "float", 0.25, "conveyor speed in m/s", min=0.05, max=0.6),
    Option("arrival_rate", "float", 24.0, "parts per minute the feeder inducts at most", min=1, max=120),
    Option("conf", "float", 0.3, "detection confidence threshold", min=0.01, max=1),
    Option(
        "perception_ms",
        "float",
        60.0,
        "simulated time charged per camera frame + detection (the wall time is measured separately)",
        min=0,
        max=5000,
    ),
    Option(
        "dimension_check",
        "bool",
        True,
        "choose among the detector's candidate classes the one whose master-data dimensions fit the "
        "depth camera's measurement (--no-dimension-check: the detector's top class only)",
    ),
)
DETECTOR = Option(
    "detector",
    "str",
    CELL_DETECTOR,
    "the object-detection model the cell sees with: a registered name or a weights file",
    when="load",
)
PICK_RUN_OPTIONS = (
    SEED,
    *CELL_OPTIONS,
    Option("slip_every", "int", 0, "inject a gripper slip on every N-th grasp (0: none)", min=0, max=1000),
    Option(
        "dropout_every", "int", 0, "drop 3 camera frames before every N-th look (0: none)", min=0, max=1000
    ),
    Option(
        "record", "bool", False, "record a video of the run (cell overview + camera view with detections)"
    ),
    Option("out", "path", None, "with --record: the .mp4 file or a folder (not set: runs/pick-and-place/)"),
    DETECTOR,
)
PICK_EVAL_OPTIONS = (
    Option("parts", "int", 200, "randomised parts to sort (--limit caps it)", min=1, max=100_000),
    Option("seed", "int", 1000, "seed of the evaluation parts (training views use seeds below 1000)", min=0),
    *CELL_OPTIONS,
    DETECTOR,
)
PICK_TRAIN_OPTIONS = (
    Option(
        "views",
        "int",
        500,
        "cell camera views to render for fine-tuning (ignored with --dataset)",
        min=10,
        max=100_000,
    ),
    Option("epochs", "int", 12, "fine-tuning epochs", min=1, max=1000),
    Option("batch", "int", 16, "images per batch", min=1, max=1024),
    Option("lr0", "float", 0.002, "initial learning rate (AdamW)", min=1e-6, max=1),
    Option("seed", "int", 0, "seed of the rendered views and of training", min=0),
    Option(
        "start", "str", None, "the object-detection model to fine-tune (default: that task's default model)"
    ),
    Option("hours", "float", None, "wall-time budget in hours (not set: all epochs)", min=0.001, max=1000),
    Option("workers", "int", 0, "data-loading processes", min=0, max=64),
    Option("progress", "bool", True, "show a progress bar"),
)

# the warehouse ---------------------------------------------------------------------------------
ROBOTS = Option("robots", "int", 6, "robots on the floor", min=1, max=30)
WAREHOUSE_RUN_OPTIONS = (
    ROBOTS,
    Option("seed", "int", 10_000, "episode seed (training uses seeds below 10,000)", min=0),
    Option(
        "policy",
        "str",
        "learned",
        "learned (the model) or scripted (the baseline)",
        choices=("learned", "scripted"),
    ),
    Option("greedy", "bool", False, "take each robot's most likely move instead of sampling"),
    Option("record", "bool", False, "record a video of the episode"),
    Option("out", "path", None, "with --record: the .mp4 file or a folder (not set: runs/warehouse/)"),
)
WAREHOUSE_EVAL_OPTIONS = (
    Option(
        "episodes", "int", 20, "held-out episodes (seeds 10,000 and up; --limit caps them)", min=1, max=10_000
    ),
    ROBOTS,
    Option("max_steps", "int", 200, "steps per episode", min=10, max=100_000),
    Option("greedy", "bool", False, "the learned policy takes its most likely move instead of sampling"),
)
WAREHOUSE_TRAIN_OPTIONS = (
    ROBOTS,
    Option(
        "steps", "int", 200_000, "robot-steps of PPO (all robots' steps count)", min=1000, max=100_000_000
    ),
    Option(
        "imitation_samples",
        "int",
        20_000,
        "scripted-policy samples to imitate first (0: none)",
        min=0,
        max=10_000_000,
    ),
    Option("envs", "int", 4, "warehouses simulated side by side", min=1, max=256),
    Option("horizon", "int", 128, "steps per rollout and warehouse", min=8, max=10_000),
    Option("lr", "float", 3e-4, "Adam learning rate", min=1e-6, max=1),
    Option("seed", "int", 0, "training seed", min=0),
    Option("progress", "bool", True, "show a progress bar"),
)


def _defaults(options: tuple[Option, ...]) -> dict:
    return {o.name: o.default for o in options}


def _card(file: str, fallback: dict) -> ModelCard:
    path = MODELS / file
    data = json.loads(path.read_text()) if path.exists() else fallback
    return ModelCard(**{k: v for k, v in data.items() if k in ModelCard.__dataclass_fields__})


def tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name=PICK,
            title="Vision-guided pick-and-place cell (Panda, conveyor, bins by class)",
            domain="robotics",
            runner=f"{PKG}.cell.runner:make_runner",
            default_model=CELL_MODEL,
            description=(
                "A simulated Franka Panda sorts parts of the `scenes` classes from a conveyor into one bin "
                "per class, seeing them with the object-detection task and a depth camera. "
                "`deepapps robot cell run` adds OPC UA, MQTT orders and a WMS."
            ),
            inputs="how many random parts to sort (e.g. 20), or a comma-separated list of part classes",
            outputs="pick success rate, sort accuracy, picks/h, cycle time, real-time factor; a video with --record",
            aliases=("cell", "pick-place"),
            train=f"{PKG}.cell.train:train",
            evaluate=f"{PKG}.cell.evaluate:evaluate",
            options=PICK_RUN_OPTIONS,
            train_options=PICK_TRAIN_OPTIONS,
            eval_options=PICK_EVAL_OPTIONS,
            input_kind="custom",
            check_input=f"{PKG}.cell.runner:check_input",
        ),
        TaskSpec(
            name=WAREHOUSE,
            title="Multi-robot warehouse (shared learned policy vs scripted)",
            domain="robotics",
            runner=f"{PKG}.warehouse.runner:make_runner",
            default_model=WAREHOUSE_MODEL,
            description=(
                "N mobile robots carry parcels from shelves to packing stations on a grid (a PettingZoo "
                "ParallelEnv); one policy network drives every robot."
            ),
            inputs="episode length in steps (e.g. 200)",
            outputs="deliveries, collisions, throughput per 100 steps; a video with --record",
            aliases=("rware", "multi-robot"),
            train=f"{PKG}.warehouse.train:train",
            evaluate=f"{PKG}.warehouse.evaluate:evaluate",
            options=WAREHOUSE_RUN_OPTIONS,
            train_options=WAREHOUSE_TRAIN_OPTIONS,
            eval_options=WAREHOUSE_EVAL_OPTIONS,
            input_kind="custom",
            check_input=f"{PKG}.warehouse.runner:check_input",
        ),
    ]


def models() -> list[ModelSpec]:
    detector = MODELS / f"{CELL_DETECTOR}.safetensors"
    policy = MODELS / f"{WAREHOUSE_MODEL}.safetensors"
    return [
        ModelSpec(
            name=CELL_MODEL,
            task=PICK,
            source="builtin:",
            card=_card(
                f"{CELL_MODEL}.card.json",
                {
                    "summary": "The cell controller: encoder conveyor tracking, detection + depth grasps, IK picks."
                },
            ),
        ),
        ModelSpec(
            name=CELL_DETECTOR,
            task="object-detection",
            source=f"bundled:{PKG}/models/{CELL_DETECTOR}.safetensors",
            files=(f"{CELL_DETECTOR}.safetensors",),
            card=_card(
                f"{CELL_DETECTOR}.card.json", {"summary": "yolo11n-half-scenes fine-tuned on cell views."}
            ),
            size_mb=round(detector.stat().st_size / 1e6, 2) if detector.exists() else None,
        ),
        ModelSpec(
            name=WAREHOUSE_MODEL,
            task=WAREHOUSE,
            source=f"bundled:{PKG}/models/{WAREHOUSE_MODEL}.safetensors",
            files=(f"{WAREHOUSE_MODEL}.safetensors",),
            card=_card(f"{WAREHOUSE_MODEL}.card.json", {"summary": "Shared PPO policy for 6 robots."}),
            size_mb=round(policy.stat().st_size / 1e6, 3) if policy.exists() else None,
        ),
    ]


def ui_pages() -> list[UIPageSpec]:
    return [
        UIPageSpec(task=PICK, title="Pick-and-place cell", render=f"{PKG}.pages.cell_page:render", icon="🦾"),
        UIPageSpec(
            task=WAREHOUSE, title="Warehouse robots", render=f"{PKG}.pages.warehouse_page:render", icon="📦"
        ),
    ]
