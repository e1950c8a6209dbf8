"""A safety shield for lane-change policies that reads only the occupancy grid the policy sees.

The shield sits between a policy and highway-env's meta-actions. It decodes the grid (ego speed
from the ego cell, every other car's row, lane and speed relative to the ego car), assumes every
car keeps its speed (constant velocity, no knowledge of the simulator's models or its future), and

- vetoes a lane change when the target lane is off the road, has a car alongside, a car ahead that
  the ego car would close on too fast, or a car behind that would close on the ego car too fast;
- turns FASTER into IDLE when speeding up would leave too short a gap to the car ahead;
- brakes (SLOWER) when the gap to the car ahead in the ego lane is below the safe gap, unless the
  policy asked for a safe lane change (moving away from the slow car is also safe) or that car is
  faster than the ego car and at least one cell clear (the gap grows; braking would only lose speed).

Safe gap to a car we close on at ``w`` m/s (ego speed ``v``):
``margin + headway * v + reaction * w + w^2 / (2 * decel)``: a reaction time of one decision step
(1 s) and the deceleration that one SLOWER per second (5 m/s per step) achieves. Gaps are read
conservatively from the 5 m cells (the nearest end of the cell, minus a car length).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from .controllers import Policy
from .envs.lane_change import CELL_X, EGO_ROW, RELATIVE_SCALE, SPEED_OFFSET, SPEED_SCALE

LEFT, IDLE, RIGHT, FASTER, SLOWER = 0, 1, 2, 3, 4
CAR_LENGTH = 5.0


@dataclass(frozen=True)
class ShieldSettings:
    """The shield's margins (metres, seconds, m/s^2); saved in the policy file's arch."""

    margin: float = 3.0  # gap kept at zero closing speed
    headway: float = 0.0  # extra gap per m/s of ego speed to the car ahead
    reaction: float = 1.0  # one decision step at 1 Hz
    # braking assumed after the reaction step: one SLOWER from 30 m/s sheds about 4.1 m/s in its first
    # second (highway-env's speed controller, gain 1/0.6 s, on a set speed 5 m/s lower); files
    # trained before this measurement store 7.0
    decel: float = 5.0
    follower_decel: float = 3.0  # what we may ask of a car behind us in the target lane
    # gap kept to a car behind in the target lane at zero closing speed; 2.5 lets the ego car change
    # in front of a car two cells back that is not faster (files before this option store nothing: 3.0)
    follower_margin: float = 3.0
    speed_step: float = 5.0  # one FASTER adds this much to the set speed
    escape: bool = True  # when the car ahead is too close, move to a safe, clearer lane before braking
    # with the network's ranking of the actions: take the allowed action it ranks highest instead of
    # the allowed action nearest its first choice (files written before this option store no value)
    ranked: bool = False


@dataclass(frozen=True)
class Car:
    rows: int  # rows ahead of the ego car (negative: behind)
    lanes: int  # lanes to the right of the ego car (negative: left)
    relative_speed: float  # its forward speed minus the ego car's (m/s)

    @property
    def gap(self) -> float:
        """Smallest bumper-to-bumper distance consistent with the cell it occupies."""
        return max(0.0, (abs(self.rows) - 0.5) * CELL_X - CAR_LENGTH)


def decode(grid) -> tuple[float, list[Car], np.ndarray]:
    """(ego speed, other cars, on-road flag per lane offset column) from one occupancy grid."""
    grid = np.asarray(grid, dtype=np.float32)
    c0 = grid.shape[2] // 2
    ego_speed = float(grid[1, EGO_ROW, c0]) * SPEED_SCALE + SPEED_OFFSET
    cars = [
        Car(int(r) - EGO_ROW, int(c) - c0, float(grid[2, r, c]) * RELATIVE_SCALE)
        for r, c in zip(*np.nonzero(grid[0] > 0.5), strict=True)
        if (r, c) != (EGO_ROW, c0)
    ]
    return ego_speed, cars, grid[3, EGO_ROW] > 0.5


class Shield:
    """The filter itself: ``filter(grid, action)`` -> the safe action closest to ``action``."""

    def __init__(self, settings: ShieldSettings | None = None) -> None:
        self.settings = settings or ShieldSettings()
        self.last = IDLE  # its own previous action: no U-turn in the middle of a lane change

    def reset(self) -> None:
        self.last = IDLE

    def filter(self, grid, action: int, ranking=None) -> int:
        """The safe action closest to ``action`` for this grid (remembered for the next step).

        With ``ranking`` (every action, best first, e.g. by Q-value) and ``ranked`` settings: the
        first ranked action the shield allows, so a vetoed first choice falls to the policy's second.
        """
        allowed = self.allowed(grid)
        nearest = self.nearest(action, allowed)
        if self.settings.ranked and ranking is not None:
            nearest = next((int(a) for a in ranking if int(a) in allowed), nearest)
        self.last = nearest
        return self.last

    def allowed(self, grid) -> set[int]:
        """Every action the shield lets through unchanged in this grid: a safe lane change, keeping
        the speed when the car ahead is far enough or pulling away, speeding up when the gap allows
        that too, and braking."""
        speed, cars, on_road = decode(grid)
        allowed = {SLOWER}
        for side, action in ((-1, LEFT), (1, RIGHT)):
            if {action, self.last} != {LEFT, RIGHT} and self.lane_change_safe(speed, cars, on_road, side):
                allowed.add(action)
        if self.ahead_safe(speed, cars, 0, 0.0) or self.pulling_away(cars):
            allowed.add(IDLE)
            if self.ahead_safe(speed, cars, 0, self.settings.speed_step):
                allowed.add(FASTER)
        return allowed

    def nearest(self, action: int, allowed: set[int]) -> int:
        """The allowed action nearest ``action``: an allowed lane change stands; when keeping the
        speed is unsafe, a safe lane change (left first, with ``escape``) comes before braking; a
        vetoed lane change or FASTER keeps the speed."""
        if action in (LEFT, RIGHT) and action in allowed:
            return action
        if IDLE not in allowed:
            escapes = (LEFT, RIGHT) if self.settings.escape else ()
            return next((a for a in escapes if a in allowed), SLOWER)
        if action in (LEFT, RIGHT) or (action == FASTER and FASTER not in allowed):
            return IDLE
        return action

    @staticmethod
    def lead(cars: list[Car], lane: int) -> Car | None:
        """The nearest car ahead in ``lane`` (lanes to the right of the ego car), if any."""
        return min((c for c in cars if c.lanes == lane and c.rows > 0), key=lambda c: c.rows, default=None)

    def pulling_away(self, cars: list[Car]) -> bool:
        """Is the nearest car ahead in the ego lane at least one cell clear and faster than us?
        Then the gap only grows: keeping the set speed is safe, braking further only loses speed."""
        lead = self.lead(cars, 0)
        return lead is not None and lead.rows >= 2 and lead.relative_speed > 0.0

    def safe_gap(self, speed: float, closing: float) -> float:
        s = self.settings
        closing = max(closing, 0.0)
        return s.margin + s.headway * speed + s.reaction * closing + closing**2 / (2 * s.decel)

    def ahead_safe(self, speed: float, cars: list[Car], lane: int, speed_up: float) -> bool:
        """Is the nearest car ahead in ``lane`` far enough at the ego speed (plus ``speed_up``)?"""
        lead = self.lead(cars, lane)
        return lead is None or lead.gap >= self.safe_gap(speed + speed_up, speed_up - lead.relative_speed)

    def behind_safe(self, cars: list[Car], lane: int) -> bool:
        """Would the nearest car behind in ``lane`` have room to slow down for us?"""
        behind = [c for c in cars if c.lanes == lane and c.rows < 0]
        if not behind:
            return True
        follower = max(behind, key=lambda c: c.rows)
        s = self.settings
        closing = max(follower.relative_speed, 0.0)
        need = s.follower_margin + s.reaction * closing + closing**2 / (2 * s.follower_decel)
        return follower.gap >= need

    def lane_change_safe(self, speed: float, cars: list[Car], on_road: np.ndarray, side: int) -> bool:
        """A lane change to ``side`` (-1 left, +1 right): target lane on the road, nobody alongside
        (there or two lanes over, who could move into it too), safe gaps ahead and behind."""
        column = on_road.size // 2 + side
        if not 0 <= column < on_road.size or not on_road[column]:
            return False
        if any(abs(c.rows) <= 1 and c.lanes in (side, 2 * side) for c in cars):
            return False
        return self.ahead_safe(speed, cars, side, 0.0) and self.behind_safe(cars, side)

    def describe(self) -> dict:
        """What a policy file's arch stores to rebuild this shield."""
        return {"kind": "ttc", **asdict(self.settings)}

    @classmethod
    def from_arch(cls, described: dict) -> Shield:
        return cls(ShieldSettings(**{k: v for k, v in described.items() if k != "kind"}))


def parse_settings(pairs: list[str]) -> dict:
    """``["ranked=true", "follower_margin=2"]`` -> typed ShieldSettings changes (one-line errors)."""
    from deepapps import InputError

    types = {f.name: type(f.default) for f in fields(ShieldSettings)}
    changes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in types:
            raise InputError(
                f"shield setting {pair!r}: expected KEY=VALUE with KEY one of {', '.join(types)}"
            )
        if types[key] is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise InputError(f"shield setting {key} takes true or false, got {value!r}")
            changes[key] = value.lower() in ("true", "1")
        else:
            try:
                changes[key] = types[key](value)
            except ValueError:
                raise InputError(f"shield setting {key} takes a number, got {value!r}") from None
    return changes


def reshield(policy, changes: dict) -> None:
    """Give a loaded shielded policy (``load_policy``) a shield with ``changes`` to its settings."""
    from deepapps import InputError

    if getattr(policy, "shield", None) is None:
        raise InputError(f"policy {policy.name} acts without a shield: nothing to change")
    policy.shield = Shield(replace(policy.shield.settings, **changes))
    policy.arch = {**policy.arch, "shield": policy.shield.describe()}


def save_reshielded(src: str | Path, out: str | Path, changes: dict) -> Path:
    """Copy the lane-change policy file ``src`` to ``out`` with ``changes`` to its shield settings:
    the same weights and metadata, a different shield."""
    from .policies import load_policy, save_policy

    policy = load_policy(src, "lane-change")
    reshield(policy, changes)
    meta = policy.metadata
    extra = {k: v for k, v in meta.items() if k not in ("format", "task", "obs_shape", "arch")}
    return save_policy(out, "lane-change", policy.network, policy.arch, extra)


class ShieldedPolicy(Policy):
    """A lane-change policy inside the shield; ``vetoes`` counts replaced actions this episode."""

    task = "lane-change"

    def __init__(self, inner: Policy, shield: Shield | None = None, name: str | None = None) -> None:
        self.inner, self.shield = inner, shield or Shield()
        self.name = name or f"{inner.name}+shield"
        self.vetoes = 0

    def reset(self) -> None:
        self.inner.reset()
        self.shield.reset()
        self.vetoes = 0

    def act(self, obs, info: dict | None = None) -> int:
        proposed = int(self.inner.act(obs, info))
        action = self.shield.filter(obs, proposed)
        self.vetoes += action != proposed
        return action


def bundled_dqn_path() -> Path:
    """The bundled lane-change DQN's policy file."""
    from . import catalog

    info = catalog.info(catalog.LANE_CHANGE)
    return Path(__file__).parent / "models" / f"{info.learned}.safetensors"


def shielded_rule() -> ShieldedPolicy:
    """The rule-based lane changer inside the shield the bundled DQN acts with (builtin
    ``lane-change-rule-shield``); the rule ranks no actions, so a vetoed one becomes the nearest."""
    from deepapps.runtime.checkpoint import read_metadata

    from .controllers import LaneChangeRule

    shield = Shield.from_arch(read_metadata(bundled_dqn_path())["arch"]["shield"])
    return ShieldedPolicy(LaneChangeRule(), shield, name="lane-change-rule-shield")


def unshielded_dqn():
    """The bundled lane-change DQN without the shield its file names (builtin
    ``lane-change-dqn-unshielded``): what the network alone does."""
    from . import catalog
    from .policies import load_policy

    return load_policy(
        bundled_dqn_path(), catalog.LANE_CHANGE, name="lane-change-dqn-unshielded", shielded=False
    )


def shielded_env(env, shield: Shield | None = None, veto_penalty: float = 0.0):
    """``env`` whose actions pass through the shield (training inside the shield): the learner's
    action is replaced by the shield's choice for the observation it acted on, and the reward of
    that step loses ``veto_penalty`` (``info["shield_veto"]`` says whether it was replaced)."""
    import gymnasium as gym

    class ShieldedActions(gym.Wrapper):
        def __init__(self, inner) -> None:
            super().__init__(inner)
            self.shield, self.last = shield or Shield(), None

        def reset(self, **kwargs):
            self.shield.reset()
            self.last, info = self.env.reset(**kwargs)
            return self.last, info

        def step(self, action):
            chosen = self.shield.filter(self.last, int(action))
            obs, reward, terminated, truncated, info = self.env.step(chosen)
            self.last = obs
            vetoed = chosen != int(action)
            return obs, reward - veto_penalty * vetoed, terminated, truncated, {**info, "shield_veto": vetoed}

    return ShieldedActions(env)
