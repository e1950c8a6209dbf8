"""``deepapps.load(TASK)``: a driving policy that acts on a plain gymnasium observation and runs episodes.

``policy = deepapps.load("lane-keeping")`` gives a runner with ``policy.act(obs, info=None)`` for any
gymnasium loop over the ``deepapps/...`` environments, and ``policy(seed)`` (or
``deepapps run lane-keeping 0 --record out.mp4``) runs one held-out episode and returns an
:class:`~deepapps_driving.results.EpisodeResult`. The input is the episode's seed; the environment
seed is ``HELD_OUT_SEED_BASE + seed``, the same episodes ``deepapps eval`` uses.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deepapps import InputError, ModelNotAvailableError, Runner
from deepapps.resolution import ModelRef

from . import catalog
from .controllers import Policy
from .results import EpisodeResult


def check_input(text: str) -> None:
    """An episode seed: a whole number from 0 (cheap; runs before anything loads)."""
    parse_seed(text)


def parse_seed(item: Any) -> int:
    limit = catalog.HELD_OUT_SEED_BASE - 1
    try:
        seed = int(str(item).strip()) if not isinstance(item, int) or isinstance(item, bool) else item
    except ValueError:
        raise InputError(
            f"input {str(item)[:40]!r}: a driving episode is named by its seed, a whole number "
            f"from 0 to {limit} (e.g. `deepapps run lane-keeping 0`)"
        ) from None
    if not 0 <= seed <= limit:
        raise InputError(f"input {seed}: episode seeds run from 0 to {limit}")
    return seed


def check_run_options(options: dict) -> None:
    """The video file must be .mp4 or .gif (checked before the policy loads)."""
    from .recorder import check_record_path

    if options.get("record") is not None:
        check_record_path(options["record"])


def load_builtin(spec) -> Policy:
    """The policy object of a builtin model (expert, rule-based or random controller): its spec's
    ``load`` names the controller class or factory."""
    from deepapps import resolve

    if spec.load is None:
        raise ModelNotAvailableError(f"model {spec.name!r} names no controller to load")
    return resolve(spec.load)()


def load_policy_for(task: str, model: ModelRef, device: str) -> Policy:
    """The policy a ModelRef names: a builtin controller, a bundled file, or the user's file."""
    if model.kind == "hub":
        raise ModelNotAvailableError(
            f"driving policies are local safetensors files; {model.name!r} is a hub id"
        )
    if model.kind == "registered" and model.spec.source_kind == "builtin":
        return load_builtin(model.spec)
    from .policies import load_policy

    return load_policy(model.path, task, name=model.name, device=device)


class DrivingRunner(Runner):
    """A policy for one driving task. ``act(obs, info=None)``; calling it with seeds runs episodes."""

    def __init__(self, task: str, policy: Policy, model_name: str, device: str, precision: str) -> None:
        super().__init__(model_name, device, precision)
        self.task = task
        self.policy = policy

    def act(self, obs, info: dict | None = None):
        """The policy's action for one observation of the task's ``deepapps/...`` environment."""
        return self.policy.act(obs, info)

    def reset(self) -> None:
        self.policy.reset()

    def __call__(self, inputs, variant: str, record: Path | None, fps: int):
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        seeds = [parse_seed(item) for item in items]
        results = []
        for item, seed in zip(items, seeds, strict=True):
            path = _video_path(record, seed, several=len(seeds) > 1)
            results.append(self.episode(seed, variant, path, fps, item))
        return results if isinstance(inputs, (list, tuple)) else results[0]

    def episode(
        self,
        seed: int,
        variant: str | None = None,
        record: Path | None = None,
        fps: int = 10,
        item: Any = None,
    ) -> EpisodeResult:
        """One held-out episode (environment seed ``HELD_OUT_SEED_BASE + seed``) as an EpisodeResult."""
        from .episode import DT, run_episode

        t0 = time.perf_counter()
        log = run_episode(
            self.task, self.policy, variant, catalog.HELD_OUT_SEED_BASE + seed, record=record is not None
        )
        t1 = time.perf_counter()
        video = None
        if record is not None:
            from .recorder import write_video

            video = str(write_video(log.frames, record, fps))
        keys = {k for s in log.states for k, v in s.items() if isinstance(v, (int, float, bool))}
        result = EpisodeResult(
            policy=self.model_name,
            variant=log.variant,
            env_id=log.env_id,
            seed=seed,
            steps=log.steps,
            outcome=log.outcome,
            metrics=log.metrics(),
            video=video,
            series={k: log.series(k).tolist() for k in sorted(keys)},
            dt=DT[self.task],
        )
        stages = {"episode": (t1 - t0) * 1e3, "video": (time.perf_counter() - t1) * 1e3}
        return self.finish(result, item if item is not None else str(seed), stages, started=t0)


def _video_path(record: Path | None, seed: int, several: bool) -> Path | None:
    if record is None or not several:
        return record
    record = Path(record)
    return record.with_name(f"{record.stem}-seed{seed}{record.suffix}")


def _factory(task: str):
    def make_runner(model: ModelRef, device: str, precision: str) -> DrivingRunner:
        return DrivingRunner(task, load_policy_for(task, model, device), model.name, device, precision)

    make_runner.__name__ = f"make_{task.replace('-', '_')}_runner"
    return make_runner


lane_keeping_runner = _factory(catalog.LANE_KEEPING)
adaptive_cruise_runner = _factory(catalog.ADAPTIVE_CRUISE)
lane_change_runner = _factory(catalog.LANE_CHANGE)
parking_runner = _factory(catalog.PARKING)
