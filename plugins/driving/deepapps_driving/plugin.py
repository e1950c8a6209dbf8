"""Hook implementations of the driving plugin (registered through the `deepapps` entry point).

Four Autopilot-style tasks on highway-env (lane keeping, adaptive cruise in stop-and-go traffic,
lane change, parking), each with a bundled learned policy (safetensors + card), a builtin
expert or rule-based baseline, and a random policy. Nothing heavy is imported here: the task
table lives in :mod:`deepapps_driving.catalog` and every callable is a lazy ``"module:function"``.
"""

from __future__ import annotations

import json
from pathlib import Path

from deepapps import ModelCard, ModelSpec, TaskSpec, UIPageSpec, hookimpl

from . import catalog

PKG = "deepapps_driving"
MODELS_DIR = Path(__file__).parent / "models"

TITLES = {
    catalog.LANE_KEEPING: (
        "Lane keeping (PilotNet from pixels, DAgger)",
        "Keep the car centred in its lane from a camera frame stack: an end-to-end CNN "
        "trained by imitating a privileged expert with DAgger; the expert stays as baseline.",
    ),
    catalog.ADAPTIVE_CRUISE: (
        "Adaptive cruise in stop-and-go traffic",
        "Follow the lead car at the chosen time gap without collision: a learned "
        "longitudinal controller (SAC) against the rule-based IDM controller.",
    ),
    catalog.LANE_CHANGE: (
        "Automatic lane change (DQN on an occupancy grid, with a safety shield)",
        "Drive fast through highway-fast-v0 traffic with discrete meta-actions; the DQN sees an "
        "occupancy grid, which does not depend on the order of the vehicles, and acts through a "
        "time-to-collision safety shield that reads the same grid.",
    ),
    catalog.PARKING: (
        "Parking (goal-conditioned, HER)",
        "Park in the given spot of parking-v0: SAC (or TQC) with hindsight experience replay, "
        "trained without walls first; with walls is reported too.",
    ),
}
RUNNERS = {t: f"{PKG}.runner:{t.replace('-', '_')}_runner" for t in catalog.TASKS}
VERBS = {t: t.replace("-", "_") for t in catalog.TASKS}
BUILTINS = {
    "lane-keeping-expert": (
        "deepapps_driving.controllers:LaneKeepingExpert",
        "Privileged expert: Stanley steering with curvature feed-forward on the true state, "
        "compensating its own steering delay. Reads info['driving'] (not pixels).",
    ),
    "adaptive-cruise-idm": (
        "deepapps_driving.controllers:IDMCruise",
        "Rule-based ACC: the Intelligent Driver Model with the chosen time gap "
        "(a=1.5 m/s², b=2 m/s², s0=2 m).",
    ),
    "lane-change-rule": (
        "deepapps_driving.controllers:LaneChangeRule",
        "Rule-based: faster when the lane ahead is clear, else a clear neighbouring lane, "
        "else slower (reads the occupancy grid only).",
    ),
}


# more builtin policies of a task, beside its baseline: the lane-change shield's comparisons
EXTRA_BUILTINS = {
    catalog.LANE_CHANGE: {
        "lane-change-rule-shield": (
            "deepapps_driving.shield:shielded_rule",
            "The rule-based lane changer inside the time-to-collision safety shield that the bundled "
            "DQN uses (reads the occupancy grid only).",
            0,
        ),
        "lane-change-dqn-unshielded": (
            "deepapps_driving.shield:unshielded_dqn",
            "The bundled lane-change DQN without its safety shield: its own greedy actions, to "
            "measure what the shield adds.",
            None,
        ),
    }
}


def _default_model(task: str) -> str:
    info = catalog.info(task)
    if (MODELS_DIR / f"{info.learned}.safetensors").exists():
        return info.learned
    return info.baseline or info.random


@hookimpl
def register_tasks(register):
    for task in catalog.TASKS:
        info = catalog.info(task)
        title, description = TITLES[task]
        register(
            TaskSpec(
                name=task,
                title=title,
                domain="driving",
                runner=RUNNERS[task],
                default_model=_default_model(task),
                description=description,
                inputs="episode seed(s): whole numbers (the environment seed is 1,000,000 + seed, held out)",
                outputs="episode metrics, outcome and time series; with --record a video with the metrics overlaid",
                train=f"{PKG}.train:train_{VERBS[task]}",
                evaluate=f"{PKG}.evaluate:evaluate_{VERBS[task]}",
                bench=f"{PKG}.evaluate:bench_{VERBS[task]}",
                options=catalog.run_options(task),
                train_options=catalog.train_options(task),
                eval_options=catalog.eval_options(task),
                bench_options=catalog.bench_options(task),
                input_kind="custom",
                check_input=f"{PKG}.runner:check_input",
                check_run_options=f"{PKG}.runner:check_run_options",
                aliases={
                    catalog.ADAPTIVE_CRUISE: ("acc", "traffic-jam"),
                    catalog.LANE_CHANGE: ("auto-lane-change",),
                }.get(task, ()),
            )
        )
        del info


def _card(name: str) -> tuple[ModelCard, float | None]:
    """A bundled policy's card, written by its training run (and its eval figures added after)."""
    path = MODELS_DIR / f"{name}.card.json"
    weights = MODELS_DIR / f"{name}.safetensors"
    size = round(weights.stat().st_size / 1e6, 3) if weights.exists() else None
    if not path.exists():
        return ModelCard(
            summary="not trained yet", training_command="deepapps train ... (see docs/driving.md)"
        ), size
    data = json.loads(path.read_text())
    fields = {k: data[k] for k in ModelCard.__dataclass_fields__ if k in data}
    return ModelCard(**fields), size


@hookimpl
def register_models(register):
    for task in catalog.TASKS:
        info = catalog.info(task)
        card, size = _card(info.learned)
        register(
            ModelSpec(
                name=info.learned,
                task=task,
                source=f"bundled:{PKG}/models/{info.learned}.safetensors",
                card=card,
                size_mb=size,
            )
        )
        if info.baseline:
            load, summary = BUILTINS[info.baseline]
            register(
                ModelSpec(
                    name=info.baseline,
                    task=task,
                    source="builtin:",
                    load=load,
                    card=ModelCard(
                        summary=summary,
                        params=0,
                        license="Apache-2.0",
                        training_data="none (hand-written controller)",
                    ),
                )
            )
        for name, (load, summary, params) in EXTRA_BUILTINS.get(task, {}).items():
            register(
                ModelSpec(
                    name=name,
                    task=task,
                    source="builtin:",
                    load=load,
                    card=ModelCard(
                        summary=summary,
                        params=params,
                        license="Apache-2.0",
                        training_data="none (hand-written)" if params == 0 else card.training_data,
                    ),
                )
            )
        register(
            ModelSpec(
                name=info.random,
                task=task,
                source="builtin:",
                load=f"{PKG}.controllers:random_{VERBS[task]}",
                card=ModelCard(
                    summary="Uniformly random actions (seed 0): the floor.",
                    params=0,
                    license="Apache-2.0",
                    training_data="none",
                ),
            )
        )


@hookimpl
def register_ui_pages(register):
    for task in catalog.TASKS:
        register(
            UIPageSpec(
                task=task,
                title=TITLES[task][0].split(" (")[0],
                render=f"{PKG}.page:render_{VERBS[task]}",
                icon="🚗",
            )
        )
