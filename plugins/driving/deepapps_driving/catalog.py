"""What the driving plugin offers, as plain data: tasks, their env variants, policies and options.

Importing this module imports nothing heavy (no gymnasium, no torch), so the plugin's registration
and the CLI's option checks stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepapps import Option

LANE_KEEPING = "lane-keeping"
ADAPTIVE_CRUISE = "adaptive-cruise"
LANE_CHANGE = "lane-change"
PARKING = "parking"
TASKS = (LANE_KEEPING, ADAPTIVE_CRUISE, LANE_CHANGE, PARKING)

# Evaluation and `deepapps run` seeds are offset by this much; training uses seeds below it, so
# every reported episode is one the policy never trained on.
HELD_OUT_SEED_BASE = 1_000_000
MAX_EPISODES = 10_000


@dataclass(frozen=True)
class Variant:
    """One gymnasium environment of a task: its short name (``--variant``) and its registered id."""

    name: str
    env_id: str
    summary: str


@dataclass(frozen=True)
class TaskInfo:
    """A driving task: its variants (the first is the default), observation and policy names."""

    name: str
    variants: tuple[Variant, ...]
    obs_shape: tuple[int, ...]
    obs_summary: str
    action_summary: str
    learned: str  # name of the bundled learned policy
    baseline: str | None  # expert / rule-based controller (builtin), or None
    random: str

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    def variant(self, name: str | None) -> Variant:
        for v in self.variants:
            if v.name == (name or self.variants[0].name):
                return v
        from deepapps import UnknownNameError

        raise UnknownNameError(f"variant of task {self.name!r}", str(name), self.variant_names)


# lane keeping: a 4-frame stack of 64x64 bird's-eye grayscale frames fixed to the car
FRAME_STACK, FRAME_SIZE = 4, 64
# adaptive cruise: [ego speed, gap, lead speed, closing speed, ego accel, time-gap setting, set speed]
CRUISE_OBS = 7
# lane change: occupancy grid 4 features x 21 cells (longitudinal, 27.5 m back to 77.5 m ahead) x 5 lanes
GRID_SHAPE = (4, 21, 5)
# parking: KinematicsGoal dict, flattened as observation(6) + achieved_goal(6) + desired_goal(6)
PARKING_OBS = 18

INFO = {
    LANE_KEEPING: TaskInfo(
        name=LANE_KEEPING,
        variants=(
            Variant(
                "v0",
                "deepapps/lane-keeping-v0",
                "highway-env lane-keeping-v0 road (10 m lane, sine of 5 m amplitude, 100 m period)",
            ),
            Variant(
                "narrow",
                "deepapps/lane-keeping-narrow-v0",
                "3.5 m lane, curvier random sine road, steering noise and a 0.2 s steering delay",
            ),
        ),
        obs_shape=(FRAME_STACK, FRAME_SIZE, FRAME_SIZE),
        obs_summary="uint8 (4, 64, 64): the last 4 bird's-eye grayscale frames, camera fixed to the car",
        action_summary="steering in [-1, 1] (x 60 degrees)",
        learned="lane-keeping-pilotnet",
        baseline="lane-keeping-expert",
        random="lane-keeping-random",
    ),
    ADAPTIVE_CRUISE: TaskInfo(
        name=ADAPTIVE_CRUISE,
        variants=(
            Variant(
                "stop-and-go",
                "deepapps/adaptive-cruise-v0",
                "one lane, a platoon in stop-and-go traffic (the head car brakes to a crawl and speeds up)",
            ),
        ),
        obs_shape=(CRUISE_OBS,),
        obs_summary="float32 (7,): ego speed, gap, lead speed, closing speed, ego accel, time gap, set speed",
        action_summary="acceleration in [-1, 1] (x 5 m/s^2; brakes to -5)",
        learned="adaptive-cruise-sac",
        baseline="adaptive-cruise-idm",
        random="adaptive-cruise-random",
    ),
    LANE_CHANGE: TaskInfo(
        name=LANE_CHANGE,
        variants=(
            Variant(
                "highway-fast",
                "deepapps/lane-change-v0",
                "highway-fast-v0 (3 lanes, 20 cars, 30 s) seen through an ego-centred occupancy grid",
            ),
        ),
        obs_shape=GRID_SHAPE,
        obs_summary="float32 (4, 21, 5): occupancy grid (presence, speed, relative speed, on-road), 77.5 m ahead",
        action_summary="meta-action 0..4: LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER",
        learned="lane-change-dqn",
        baseline="lane-change-rule",
        random="lane-change-random",
    ),
    PARKING: TaskInfo(
        name=PARKING,
        variants=(
            Variant("no-walls", "deepapps/parking-v0", "parking-v0 without the surrounding walls"),
            Variant("walls", "deepapps/parking-walls-v0", "parking-v0 with its walls"),
        ),
        obs_shape=(PARKING_OBS,),
        obs_summary="dict of observation, achieved_goal, desired_goal (6 each: x, y, vx, vy, cos h, sin h)",
        action_summary="[acceleration, steering] in [-1, 1]",
        learned="parking-sac-her",
        baseline=None,
        random="parking-random",
    ),
}


def info(task: str) -> TaskInfo:
    if task not in INFO:
        from deepapps import UnknownNameError

        raise UnknownNameError("driving task", task, TASKS)
    return INFO[task]


# --- declared options ------------------------------------------------------------------------------
def _variant(task: str) -> Option:
    names = INFO[task].variant_names
    return Option(
        "variant",
        "str",
        names[0],
        "which environment: " + "; ".join(f"{v.name} = {v.summary}" for v in INFO[task].variants),
        choices=names,
    )


def run_options(task: str) -> tuple[Option, ...]:
    return (
        _variant(task),
        Option(
            "record",
            "path",
            None,
            "write a rollout video with the metrics overlaid (.mp4 or .gif; "
            "several episodes get -seed<N> added to the name)",
        ),
        Option("fps", "int", 10, "frames per second of the video", min=1, max=60),
    )


def eval_options(task: str) -> tuple[Option, ...]:
    return (
        _variant(task),
        Option("episodes", "int", 50, "episodes to run (held-out seeds)", min=1, max=MAX_EPISODES),
        Option(
            "seed",
            "int",
            0,
            f"first held-out seed (environment seed = {HELD_OUT_SEED_BASE:,} + seed + i)",
            min=0,
            max=HELD_OUT_SEED_BASE - MAX_EPISODES,
        ),
    )


def bench_options(task: str) -> tuple[Option, ...]:
    return (
        _variant(task),
        Option("steps", "int", 200, "environment steps timed", min=1, max=100_000),
    )


# lane-change training rewards: changes to highway-env's reward configuration (training only; the
# evaluation does not use the reward). "highway" drops the right-lane bonus, which kept the car in the
# right lane behind slower traffic; "speed" also pays for speed from 0 m/s and drops the normalisation,
# whose constant per-step survival bonus made longer-horizon learners slow and cautious.
LANE_CHANGE_REWARDS = {
    "highway": {"right_lane_reward": 0.0},
    "speed": {"right_lane_reward": 0.0, "reward_speed_range": [0.0, 30.0], "normalize_reward": False},
}

TRAIN_DEFAULTS = {
    LANE_KEEPING: {"steps": 8, "episodes": 20},  # DAgger iterations, expert/learner episodes per iteration
    ADAPTIVE_CRUISE: {"steps": 30_000},
    LANE_CHANGE: {"steps": 12_000},
    PARKING: {"steps": 25_000},
}


def train_options(task: str) -> tuple[Option, ...]:
    d = TRAIN_DEFAULTS[task]
    common = (
        Option(
            "seed",
            "int",
            0,
            "training seed (environment seeds stay below the held-out range)",
            min=0,
            max=HELD_OUT_SEED_BASE - 1,
        ),
        Option(
            "minutes", "float", None, "stop after this many wall-clock minutes (default: no limit)", min=0.1
        ),
        Option(
            "eval_episodes",
            "int",
            10,
            "held-out episodes for the final check written to the card",
            min=0,
            max=1000,
        ),
    )
    if task == LANE_KEEPING:
        return common + (
            Option(
                "iterations",
                "int",
                d["steps"],
                "DAgger iterations (the first is pure expert data)",
                min=1,
                max=200,
            ),
            Option(
                "episodes",
                "int",
                d["episodes"],
                "episodes collected per iteration (both variants)",
                min=1,
                max=1000,
            ),
            Option(
                "epochs", "int", 2, "passes over the aggregated data after each iteration", min=1, max=100
            ),
            Option("batch", "int", 64, "minibatch size", min=1, max=4096),
            Option("lr", "float", 1e-3, "AdamW learning rate", min=1e-6, max=1.0),
            Option(
                "max_samples",
                "int",
                40_000,
                "cap on the aggregated dataset (oldest dropped first)",
                min=100,
                max=1_000_000,
            ),
            Option(
                "variant",
                "str",
                "both",
                "roads to drive while collecting: both variants in turn, or only one",
                choices=("both", *INFO[LANE_KEEPING].variant_names),
            ),
        )
    extra: tuple[Option, ...] = (
        Option("steps", "int", d["steps"], "environment steps of RL training", min=100, max=10_000_000),
    )
    if task == LANE_CHANGE:
        extra += (
            Option("gamma", "float", 0.8, "DQN discount factor (0.8: a horizon of about 5 s)", min=0.0, max=0.999),
            Option(
                "veto_penalty",
                "float",
                0.0,
                "training reward taken off each step the safety shield replaces the DQN's action",
                min=0.0,
                max=10.0,
            ),
            Option("n_steps", "int", 1, "DQN n-step returns (1: plain one-step targets)", min=1, max=20),
            Option(
                "reward",
                "str",
                "highway",
                "training reward: highway-env's (normalised, speed counted from 20 m/s, no right-lane "
                "bonus) or speed (0 to 0.4 for 0 to 30 m/s, -1 for a crash, no bonus for staying alive)",
                choices=tuple(LANE_CHANGE_REWARDS),
            ),
        )
    if task == PARKING:
        extra += (
            Option("algo", "str", "sac", "off-policy learner under HER", choices=("sac", "tqc")),
            Option(
                "variant", "str", "no-walls", "environment to train in", choices=INFO[PARKING].variant_names
            ),
        )
    return common + extra
