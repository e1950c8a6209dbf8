"""The driving environments, registered with gymnasium under ``deepapps/...`` ids.

``import deepapps_driving.envs`` registers them (``register_envs()`` is idempotent); then
``gymnasium.make("deepapps/lane-keeping-v0")`` works in any gymnasium loop. Each environment's
``info["driving"]`` carries the true state that metrics (and privileged experts) read.

=============================== ======================================================== ==========
id                              what                                                     max steps
=============================== ======================================================== ==========
deepapps/lane-keeping-v0        lane-keeping-v0, camera frame stack                      200
deepapps/lane-keeping-narrow-v0 3.5 m lane, curvier, steering noise + 0.2 s delay         200
deepapps/adaptive-cruise-v0     stop-and-go platoon, longitudinal control                 400
deepapps/lane-change-v0         highway-fast-v0, set speeds 0-30 m/s, 77.5 m grid         30
deepapps/parking-v0             parking-v0 without walls (goal-conditioned dict)          100
deepapps/parking-walls-v0       parking-v0 with walls                                     100
=============================== ======================================================== ==========
"""

from __future__ import annotations

import os

# highway-env renders with pygame: "offscreen" draws real frames without a display ("dummy" draws black)
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

ENVS = {
    "deepapps/lane-keeping-v0": ("deepapps_driving.envs.lane_keeping:make", {"variant": "v0"}, 200),
    "deepapps/lane-keeping-narrow-v0": (
        "deepapps_driving.envs.lane_keeping:make",
        {"variant": "narrow"},
        200,
    ),
    "deepapps/adaptive-cruise-v0": ("deepapps_driving.envs.cruise:make", {}, None),
    "deepapps/lane-change-v0": ("deepapps_driving.envs.lane_change:make", {}, None),
    "deepapps/parking-v0": ("deepapps_driving.envs.parking:make", {"variant": "no-walls"}, None),
    "deepapps/parking-walls-v0": ("deepapps_driving.envs.parking:make", {"variant": "walls"}, None),
}


def register_envs() -> None:
    """Register every ``deepapps/...`` environment with gymnasium (safe to call again)."""
    import gymnasium as gym

    for env_id, (entry, kwargs, steps) in ENVS.items():
        if env_id not in gym.registry:
            gym.register(
                env_id, entry_point=entry, kwargs=kwargs, max_episode_steps=steps, disable_env_checker=True
            )


def make_env(env_id: str, render_mode: str | None = None):
    """``gymnasium.make(env_id)`` after registering ours (``render_mode="rgb_array"`` for videos)."""
    import gymnasium as gym

    register_envs()
    return gym.make(env_id, render_mode=render_mode)


register_envs()
