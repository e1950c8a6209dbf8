"""Go on Ray (a local Ray with 2 CPUs, started once for the module): self-play chunks equal the
in-process ones for the same seed and weights, a new weights version reaches the workers, and an
arena on two Ray workers gives the same games as one process."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepapps.runtime import set_threads
from deepapps_games.go.net import Evaluator, GoNet, NetConfig, save_net
from deepapps_games.go.selfplay import RaySelfPlay, SelfPlayConfig, Weights, chunk_seed, selfplay

CFG = SelfPlayConfig(size=5, komi=7.5, visits=8, fast_visits=4, full_prob=0.5, concurrent=2)


def _net(seed: int) -> GoNet:
    torch.manual_seed(seed)
    return GoNet(NetConfig(blocks=1, channels=8)).eval()


@pytest.fixture(scope="module")
def ray_local():
    from deepapps.runtime.cluster import ray_session

    with ray_session(num_cpus=2) as ray:
        yield ray


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("x", "pi", "z", "own"))


def test_weights_round_trip_without_pickle():
    net = _net(0)
    w = Weights.pack(net, 7)
    assert w.version == 7 and isinstance(w.blob, bytes)
    back = w.unpack()
    assert all(
        torch.equal(x, y) for x, y in zip(net.state_dict().values(), back.state_dict().values(), strict=True)
    )


def test_ray_selfplay_equals_local_and_weights_are_versioned(ray_local):
    net0, net1 = _net(0), _net(1)
    sp = RaySelfPlay(CFG, net0, 0, workers=2, games_per_chunk=2, first_seed=3, session=ray_local)
    try:
        first = [_poll(sp) for _ in range(2)]
        sp.publish(net1, 1)  # chunks submitted from now on use version 1
        later = [_poll(sp) for _ in range(4)]
    finally:
        sp.close()
    seeds = [stats["seed"] for _, stats in first + later]
    # chunk numbers are handed out in order, whichever worker is free (one may still be starting)
    assert len(set(seeds)) == 6 and set(seeds) <= {chunk_seed(3, k) for k in range(8)}
    threads = torch.get_num_threads()
    set_threads(1)  # as in the workers: another thread count may sum floats in another order
    for samples, stats in first + later:
        net = net1 if stats["generation"] == 1 else net0
        local, local_stats = selfplay(Evaluator(net), CFG, 2, seed=stats["seed"])
        assert _same(samples, local) and stats["positions"] == local_stats["positions"] == len(samples)
    set_threads(threads)
    assert [s["generation"] for _, s in first] == [0, 0]
    assert any(s["generation"] == 1 for _, s in later)


def _poll(sp):
    got = None
    while got is None:
        got = sp.poll(timeout=1.0)
    return got


def test_local_ray_keeps_workers_at_driver_priority_and_quiet(ray_local):
    """Ray renices its workers to 15 by default, so other processes took most of their core (the
    old pool ran at the driver's priority); the private instance keeps them at the driver's
    niceness and turns off metrics and task events. A joined cluster keeps its own settings."""
    import os

    from deepapps.runtime.cluster import init_kwargs

    @ray_local.remote(num_cpus=1)
    def niceness() -> int:
        return os.nice(0)

    assert ray_local.get(niceness.remote()) == os.nice(0)
    local = init_kwargs(None, 2)["_system_config"]
    assert local["worker_niceness"] == 0 and local["enable_metrics_collection"] is False
    assert local["task_events_report_interval_ms"] == 0
    assert "_system_config" not in init_kwargs("127.0.0.1:6379", None)


def test_bench_cpus_used_is_worker_cpu_per_wall_second():
    from deepapps_games.go.bench import _cpus_used

    runs = [([{"cpu_seconds": 3.0}, {"cpu_seconds": 2.5}], 4.0), ([{"cpu_seconds": 1.5}], 1.0)]
    assert _cpus_used(runs) == 1.4  # 7 CPU-seconds in 5 wall seconds: 2 workers got 1.4 cores


def test_arena_on_ray_equals_one_process(ray_local, tmp_path):
    from deepapps_games.go.arena import run_arena

    path = tmp_path / "tiny.safetensors"
    save_net(path, _net(0), {"size": 5, "komi": 7.5})
    kwargs = dict(model=str(path), opponent="random", games=4, visits=4, seed=11, show_progress=False)
    one = run_arena(workers=1, **kwargs)
    two = run_arena(workers=2, **kwargs)
    for key in ("results", "wins", "wins_as_black", "mean_length", "distinct_games"):
        assert one[key] == two[key], key
    assert len(one["results"]) == 4


def test_unreachable_ray_address_fails_fast_before_writing(tmp_path):
    import socket
    import time

    from deepapps.errors import DeepAppsError
    from deepapps_games.go.arena import run_arena
    from deepapps_games.go.train import train

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{s.getsockname()[1]}"
    s.close()
    path = tmp_path / "tiny.safetensors"
    save_net(path, _net(0), {"size": 5, "komi": 7.5})
    t0 = time.perf_counter()
    with pytest.raises(DeepAppsError, match="cannot reach the Ray cluster"):
        train(out_dir=tmp_path / "run", size=5, ray_address=address)
    with pytest.raises(DeepAppsError, match="cannot reach the Ray cluster"):
        run_arena(
            model=str(path), opponent="random", games=2, visits=2, ray_address=address, show_progress=False
        )
    assert time.perf_counter() - t0 < 10 and not (tmp_path / "run").exists()
