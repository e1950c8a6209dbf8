"""The lane-change safety shield on hand-made occupancy grids, and inside real episodes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from deepapps_driving import catalog
from deepapps_driving.envs.lane_change import (
    EGO_ROW,
    RELATIVE_SCALE,
    SPEED_OFFSET,
    SPEED_SCALE,
    TARGET_SPEEDS,
)
from deepapps_driving.shield import (
    FASTER,
    IDLE,
    LEFT,
    RIGHT,
    SLOWER,
    Car,
    Shield,
    ShieldedPolicy,
    ShieldSettings,
    decode,
    shielded_env,
)

C0 = catalog.GRID_SHAPE[2] // 2


def scene(ego_speed: float, cars=(), lanes=(0, 1, 2, 3, 4)) -> np.ndarray:
    """A grid with the ego car in its cell and ``cars`` as (rows ahead, lanes right, speed)."""
    grid = np.zeros(catalog.GRID_SHAPE, dtype=np.float32)
    for rows, side, speed in [(0, 0, ego_speed), *cars]:
        r, c = EGO_ROW + rows, C0 + side
        grid[0, r, c] = 1.0
        grid[1, r, c] = (speed - SPEED_OFFSET) / SPEED_SCALE
        grid[2, r, c] = (speed - ego_speed) / RELATIVE_SCALE
    grid[3, :, list(lanes)] = 1.0
    return grid


def test_decode_reads_speeds_and_conservative_gaps():
    speed, cars, on_road = decode(scene(25.0, [(4, 0, 20.0), (-2, -1, 30.0)]))
    assert speed == pytest.approx(25.0)
    lead, follower = sorted(cars, key=lambda c: -c.rows)
    assert (lead.rows, lead.lanes, lead.relative_speed) == (4, 0, pytest.approx(-5.0))
    assert lead.gap == pytest.approx(12.5)  # centres >= 17.5 m apart, minus a 5 m car
    assert (follower.rows, follower.lanes, follower.relative_speed) == (-2, -1, pytest.approx(5.0))
    assert Car(1, 0, 0.0).gap == 0.0 and on_road.all()


def test_vetoes_a_lane_change_into_a_car_closing_from_behind():
    shield = Shield()
    fast_follower = scene(25.0, [(-3, -1, 35.0)])  # 7.5 m behind in the left lane, 10 m/s faster
    assert shield.filter(fast_follower, LEFT) == IDLE
    slow_follower = scene(25.0, [(-3, -1, 20.0)])  # same place, slower: room to merge
    assert shield.filter(slow_follower, LEFT) == LEFT
    alongside = scene(25.0, [(1, 1, 25.0)])
    assert shield.filter(alongside, RIGHT) == IDLE


def test_vetoes_a_lane_change_off_the_road_and_next_to_a_merging_car():
    assert Shield().filter(scene(25.0, lanes=(2, 3, 4)), LEFT) == IDLE  # the leftmost lane
    two_over = scene(25.0, [(0, 2, 25.0)])  # a car two lanes right, level with us
    assert Shield().filter(two_over, RIGHT) == IDLE


def test_brakes_for_a_slow_car_ahead_unless_a_safe_lane_is_free():
    # 22.5 m to a car 15 m/s slower: the safe gap is 3 + 15 + 15^2 / 10 = 40.5 m
    slow_lead = [(6, 0, 15.0)]
    no_escape = Shield(ShieldSettings(escape=False))
    assert no_escape.filter(scene(30.0, slow_lead), FASTER) == SLOWER
    assert no_escape.filter(scene(30.0, slow_lead), IDLE) == SLOWER
    assert Shield().filter(scene(30.0, slow_lead), FASTER) == LEFT  # the left lane is empty
    boxed_in = slow_lead + [(0, -1, 30.0), (0, 1, 30.0)]
    assert Shield().filter(scene(30.0, boxed_in), FASTER) == SLOWER
    far_lead = [(15, 0, 15.0)]  # 67.5 m away: not yet
    assert no_escape.filter(scene(30.0, far_lead), IDLE) == IDLE


def test_holds_the_speed_instead_of_closing_in():
    follow = [(3, 0, 25.0)]  # 7.5 m behind a car at our speed: safe now (3 m), not 5 m/s faster (10.5 m)
    assert Shield().filter(scene(25.0, follow), FASTER) == IDLE
    assert Shield().filter(scene(25.0, follow), IDLE) == IDLE
    assert Shield().filter(scene(25.0), FASTER) == FASTER  # an empty road


def test_one_slower_sheds_what_the_shield_assumes():
    """The shield's 5 m/s^2: one SLOWER from 30 m/s sheds 4-5 m/s in its one-second step."""
    env = gym.make("deepapps/lane-change-v0")
    _, info = env.reset(seed=catalog.HELD_OUT_SEED_BASE)
    for action in (FASTER, IDLE):  # 25 -> about 30 m/s
        _, _, terminated, _, info = env.step(action)
        assert not terminated
    before = info["driving"]["speed"]
    _, _, terminated, _, info = env.step(SLOWER)
    drop = before - info["driving"]["speed"]
    assert before > 29.5 and not terminated and 4.0 <= drop <= 5.0
    assert ShieldSettings().decel == 5.0
    top = max(TARGET_SPEEDS)  # the "speed" training reward reaches its top at the top set speed
    assert catalog.LANE_CHANGE_REWARDS["speed"]["reward_speed_range"] == [0.0, top]


def test_no_braking_for_a_car_that_pulls_away():
    no_escape = Shield(ShieldSettings(escape=False))
    # 2.5 m (read conservatively) to a car 3 m/s faster: below the 3 m margin, but the gap grows
    assert no_escape.filter(scene(20.0, [(2, 0, 23.0)]), IDLE) == IDLE
    assert no_escape.filter(scene(20.0, [(2, 0, 23.0)]), FASTER) == IDLE  # speeding up is still checked
    assert no_escape.filter(scene(20.0, [(2, 0, 19.0)]), IDLE) == SLOWER  # the same gap, closing
    assert no_escape.filter(scene(20.0, [(1, 0, 23.0)]), IDLE) == SLOWER  # no clear cell between us


def test_ranked_shield_takes_the_best_allowed_action_of_the_ranking():
    follow = scene(25.0, [(3, 0, 25.0)])  # FASTER would close in; both lanes beside are free
    ranking = [FASTER, RIGHT, IDLE, LEFT, SLOWER]
    assert Shield().allowed(follow) == {LEFT, IDLE, RIGHT, SLOWER}
    assert Shield().filter(follow, FASTER, ranking=ranking) == IDLE  # nearest: the ranking is ignored
    ranked = Shield(ShieldSettings(ranked=True))
    assert ranked.filter(follow, FASTER, ranking=ranking) == RIGHT  # the network's second choice
    assert ranked.filter(follow, LEFT, ranking=[LEFT, IDLE]) == IDLE  # no U-turn: LEFT is not allowed now
    assert ranked.filter(follow, FASTER) == IDLE  # without a ranking it is the nearest-action shield
    boxed_in = scene(30.0, [(6, 0, 15.0), (0, -1, 30.0), (0, 1, 30.0)])
    assert ranked.allowed(boxed_in) == {SLOWER}
    assert ranked.filter(boxed_in, FASTER, ranking=[FASTER, IDLE, LEFT, RIGHT, SLOWER]) == SLOWER


def test_follower_margin_lets_the_ego_car_cut_in_ahead_of_a_car_that_is_not_faster():
    # a car two cells back in the left lane: at least 2.5 m between bumpers
    relaxed_shield = Shield(ShieldSettings(follower_margin=2.0))
    for speed, strict, relaxed in ((25.0, IDLE, LEFT), (20.0, IDLE, LEFT), (27.0, IDLE, IDLE)):
        grid = scene(25.0, [(-2, -1, speed)])
        assert Shield().filter(grid, LEFT) == strict  # the 3 m margin: never
        assert relaxed_shield.filter(grid, LEFT) == relaxed  # 2 m: unless it closes in
    assert relaxed_shield.filter(scene(25.0, [(-1, -1, 20.0)]), LEFT) == IDLE  # one cell back: never


def test_no_u_turn_in_the_middle_of_a_lane_change():
    shield = Shield()
    assert shield.filter(scene(25.0), LEFT) == LEFT
    assert shield.filter(scene(25.0), RIGHT) == IDLE  # one step later: still changing lanes
    assert shield.filter(scene(25.0), RIGHT) == RIGHT
    shield.filter(scene(25.0), LEFT)
    shield.reset()
    assert shield.filter(scene(25.0), RIGHT) == RIGHT


def test_shielded_policy_counts_its_vetoes():
    class AlwaysLeft:
        name = "left"

        def act(self, obs, info=None):
            return LEFT

        def reset(self):
            pass

    policy = ShieldedPolicy(AlwaysLeft())
    assert policy.act(scene(25.0, lanes=(2, 3, 4))) == IDLE and policy.vetoes == 1
    assert policy.act(scene(25.0)) == LEFT and policy.vetoes == 1
    policy.reset()
    assert policy.vetoes == 0 and policy.name == "left+shield"


def test_shielded_env_replaces_unsafe_actions_and_the_grid_holds_the_ego_speed():
    env = shielded_env(gym.make("deepapps/lane-change-v0"))
    obs, info = env.reset(seed=catalog.HELD_OUT_SEED_BASE)
    assert decode(obs)[0] == pytest.approx(info["driving"]["speed"], abs=1e-4)
    lane = info["driving"]["lane"]
    for _ in range(3):  # asking for LEFT from the leftmost lane is refused, not attempted
        obs, _, terminated, _, info = env.step(LEFT)
        assert not terminated
    assert info["driving"]["lane"] <= lane and (lane > 0 or info["driving"]["lane"] == 0)


def test_veto_penalty_costs_exactly_the_replaced_steps():
    plain = shielded_env(gym.make("deepapps/lane-change-v0"))
    penalised = shielded_env(gym.make("deepapps/lane-change-v0"), veto_penalty=0.5)
    seed = catalog.HELD_OUT_SEED_BASE + 1
    plain.reset(seed=seed)
    penalised.reset(seed=seed)
    vetoes = 0
    for action in (LEFT, LEFT, LEFT, RIGHT, RIGHT, RIGHT, RIGHT):  # walks off the road both ways
        _, r0, done0, _, info0 = plain.step(action)
        _, r1, done1, _, info1 = penalised.step(action)
        assert info0["shield_veto"] == info1["shield_veto"] and done0 == done1
        assert r1 == pytest.approx(r0 - 0.5 * info1["shield_veto"])
        vetoes += info1["shield_veto"]
        if done0:
            break
    assert vetoes >= 1  # three lanes cannot take three moves each way


def q_values(network_policy, obs) -> np.ndarray:
    import torch

    from deepapps_driving.policies import flatten_obs

    with torch.inference_mode():
        x = torch.as_tensor(flatten_obs(obs, "lane-change")).unsqueeze(0)
        return network_policy.network(x)[0].numpy()


def test_bundled_lane_changer_acts_through_its_shield_and_can_drop_it():
    import deepapps

    policy = deepapps.load("lane-change")
    bare = deepapps.load("lane-change", "lane-change-dqn-unshielded")
    assert policy.model_name == "lane-change-dqn" and policy.policy.shield is not None
    assert bare.policy.shield is None
    # trained inside the default shield; it acts in one that takes the best allowed action by Q-value
    # and lets it cut in ahead of a car two cells back that is not faster (docs/driving.md)
    assert policy.policy.shield.settings == ShieldSettings(ranked=True, follower_margin=2.0)
    rule = deepapps.load("lane-change", "lane-change-rule-shield")  # the same shield around the rule
    assert rule.policy.shield.settings == policy.policy.shield.settings
    env = gym.make("deepapps/lane-change-v0")
    obs, info = env.reset(seed=catalog.HELD_OUT_SEED_BASE + 3)
    policy.reset()
    reference = Shield(ShieldSettings(ranked=True, follower_margin=2.0))  # around the bare network
    for _ in range(10):
        q = q_values(bare.policy, obs)
        expected = reference.filter(obs, int(np.argmax(q)), ranking=np.argsort(-q, kind="stable"))
        action = policy.act(obs)
        assert action in range(5) and action == expected and bare.act(obs) == int(np.argmax(q))
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    assert not info["driving"]["crashed"]
