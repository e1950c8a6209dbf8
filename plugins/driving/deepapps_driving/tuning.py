"""Model choice on training-range seeds, never the held-out ones.

``deepapps eval`` plays held-out seeds (environment seeds from ``held_out_seed_base``). Choosing
between training runs must not look at those, so this script plays raw environment seeds from
``--first`` (default 500,000, inside the training range) and prints the same aggregate figures::

    python -m deepapps_driving.tuning lane-change RUN_A.safetensors RUN_B.safetensors --episodes 100 --json

``--shield KEY=VALUE`` (repeatable) plays a lane-change file with changed shield settings;
``--save-as OUT`` writes that file with them (same weights) instead of playing::

    python -m deepapps_driving.tuning lane-change RUN.safetensors --shield follower_margin=2 --episodes 100
    python -m deepapps_driving.tuning lane-change RUN.safetensors --shield ranked=true --save-as OUT.safetensors

It was used to pick the bundled lane-change DQN and its shield settings (docs/driving.md).
"""

from __future__ import annotations

import argparse
import json

from deepapps import InputError

TUNING_FIRST_SEED = 500_000


def tuning_figures(
    task: str, path: str, episodes: int, first: int = TUNING_FIRST_SEED, shield: dict | None = None
) -> dict:
    """Aggregate metrics of the policy file ``path`` over ``episodes`` tuning seeds from ``first``
    (with ``shield`` changes to a lane-change file's shield settings)."""
    from .episode import run_episode
    from .metrics import aggregate
    from .policies import load_policy
    from .shield import reshield

    if episodes < 1:
        raise InputError(f"--episodes must be at least 1, got {episodes}")
    policy = load_policy(path, task)
    if shield:
        reshield(policy, shield)
    logs = [run_episode(task, policy, None, first + i).metrics() for i in range(episodes)]
    return aggregate(task, logs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task")
    parser.add_argument("policies", nargs="+", help="policy files (.safetensors) to compare")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--first", type=int, default=TUNING_FIRST_SEED, help="first environment seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--shield",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a shield setting (lane-change)",
    )
    parser.add_argument(
        "--save-as", help="write the one policy with the --shield changes to this file, then stop"
    )
    args = parser.parse_args(argv)
    from .shield import parse_settings, save_reshielded

    changes = parse_settings(args.shield)
    if args.save_as:
        if args.task != "lane-change" or len(args.policies) != 1:
            raise InputError("--save-as takes one lane-change policy file")
        print(save_reshielded(args.policies[0], args.save_as, changes))
        return
    results = {p: tuning_figures(args.task, p, args.episodes, args.first, changes) for p in args.policies}
    if args.json:
        print(json.dumps(results))
        return
    for path, m in results.items():
        print(f"{path}: crash rate {m['crash_rate']:.2f}, mean speed {m['mean_speed_mps']:.2f} m/s")


if __name__ == "__main__":
    try:
        main()
    except InputError as exc:
        raise SystemExit(f"error: {exc}") from None
