"""Search, self-play/training loop, GTP, arena, SGF, pettingzoo play and the runner (tiny nets, fast)."""

from __future__ import annotations

import io
import json
import math
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from deepapps import InputError
from deepapps_games.go.board import BLACK, WHITE, Board, gtp_to_move
from deepapps_games.go.mcts import MCTS
from deepapps_games.go.net import (
    Evaluator,
    GoNet,
    NetConfig,
    features,
    features_batch,
    load_net,
    masked_priors,
    save_net,
)
from deepapps_games.go.selfplay import MCTSPlayer, RandomPlayer, SelfPlayConfig, match, selfplay, wilson

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("go") / "tiny.safetensors"
    save_net(path, GoNet(NetConfig(blocks=1, channels=8)), {"size": 5, "komi": 7.5})
    return path


def _capture_position() -> Board:
    """5x5, black to move; C1 captures four white stones and wins, every other move loses."""
    b = Board(5, komi=16.5, max_moves=1)  # the next move ends the game (move cap), so it is scored
    for r in range(4):
        b.stones[r * 5 + 1] = BLACK
        b.stones[r * 5 + 2] = WHITE
        b.stones[r * 5 + 3] = BLACK
    b.stones[4 * 5 + 1] = BLACK
    b.stones[4 * 5 + 3] = BLACK
    return b


@pytest.mark.parametrize("batch", [1, 8, 64])
def test_mcts_finds_capture_to_win(batch):
    torch.manual_seed(1)
    ev = Evaluator(GoNet(NetConfig(blocks=1, channels=8)))
    board = _capture_position()
    win = gtp_to_move("C1", 5)
    after = board.copy()
    after.play(win)
    assert after.winner() == BLACK and after.stones.count(WHITE) == 0
    res = MCTS(ev, batch=batch).search(board, 200)
    assert res.best() == win
    assert res.value > 0.3  # the search knows black wins
    top = res.top(1)[0]
    assert top["move"] == "C1" and top["winrate"] == 1.0


def test_batched_search_uses_fewer_network_calls():
    ev1, ev16 = Evaluator(GoNet(NetConfig(1, 8))), None
    ev16 = Evaluator(ev1.net)
    MCTS(ev1, batch=1).search(Board(7), 128)
    MCTS(ev16, batch=16).search(Board(7), 128)
    assert ev1.calls >= 128
    assert ev16.calls < ev1.calls / 5
    assert ev16.positions >= 128


def _sharp_evaluator(boards, masks):
    """Priors that put almost everything on the first candidate move (like a net imitating one
    teacher move), value 0: descents in one batch keep running into the same leaf."""
    priors = []
    for m in masks:
        p = np.full(len(m), 1e-3)
        p[0] = 1.0
        priors.append(p / p.sum())
    return priors, np.zeros(len(boards))


def test_collisions_keep_virtual_loss_until_the_batch_is_full():
    m = MCTS(_sharp_evaluator, batch=16, rng=np.random.default_rng(0))
    m.set_root(Board(7))
    m.evaluate_pending(m.collect(1))
    m.run(40)  # some tree to descend through
    visits_before, collisions_before = m.root.visits, m.collisions
    pending = m.collect(16)
    leaves = [leaf for _, leaf in pending]
    assert m.collisions > collisions_before  # the sharp prior sends descents to the same leaf...
    assert len(pending) == 16  # ...yet the batch still fills, with distinct leaves
    assert len({id(leaf) for leaf in leaves}) == 16 and all(leaf.pending for leaf in leaves)
    # the colliding descents' virtual losses are gone: only the pending paths remain counted
    assert m.root.n_sum == visits_before - 1 + 16
    m.evaluate_pending(pending)
    assert m.root.visits == visits_before + 16 and m.root.n_sum == m.root.visits - 1
    assert not any(leaf.pending for leaf in leaves)
    # and a cap on collisions returns a short batch rather than searching forever
    capped = MCTS(_sharp_evaluator, batch=64, max_collisions=0, rng=np.random.default_rng(0))
    capped.set_root(Board(7))
    capped.evaluate_pending(capped.collect(1))
    capped.run(40)
    before = capped.collisions
    short = capped.collect(64)
    assert capped.collisions == before + 1 and 0 < len(short) < 64
    capped.evaluate_pending(short)
    assert capped.root.n_sum == capped.root.visits - 1


def test_bf16_evaluator_matches_fp32():
    torch.manual_seed(0)
    net = GoNet(NetConfig(2, 16))
    boards = [Board(7)]
    rng = random.Random(0)
    for _ in range(20):
        b = boards[-1].copy()
        b.play(rng.choice(b.candidate_moves()))
        boards.append(b)
    masks = [b.candidate_moves() for b in boards]
    p32, v32 = Evaluator(net)(boards, masks)
    p16, v16 = Evaluator(net, precision="bf16")(boards, masks)
    assert v16.dtype == np.float32 and np.abs(v16 - v32).max() < 0.05
    for a, b in zip(p32, p16, strict=True):
        assert b.dtype == np.float32 and abs(b.sum() - 1) < 1e-4 and np.abs(a - b).max() < 0.05
    with pytest.raises(Exception, match="unknown precision"):
        Evaluator(net, precision="int3")


def _puct_argmax(m: MCTS, node) -> int:
    """The textbook PUCT choice at ``node``: argmax over every move, first index on ties."""
    N = np.asarray(node.N, dtype=np.float64)
    W = np.asarray(node.W, dtype=np.float64)
    fpu = node.value_sum / node.visits - m.fpu_reduction if node.visits > 0 else 0.0
    q = np.where(N > 0, W / np.maximum(N, 1.0), fpu)
    u = m.c_puct * node.P * (math.sqrt(N.sum() + 1.0) / (1.0 + N))
    return int(np.argmax(q + u))


@pytest.mark.parametrize("uniform", [False, True])
def test_selection_is_the_puct_argmax_and_virtual_loss_undoes(uniform):
    """The pointer-based selection picks what a full argmax picks (ties included), at every level."""
    ev = Evaluator(GoNet(NetConfig(1, 8)))
    m = MCTS(ev, batch=8, rng=np.random.default_rng(0))
    m.set_root(Board(5))
    m.evaluate_pending(m.collect(1))
    if uniform:  # every prior equal: the lowest index must win each tie
        m.root.P = np.full(len(m.root.moves), 1.0 / len(m.root.moves))
    else:
        m.add_noise()
    for _ in range(40):
        expected, node = [], m.root
        while node is not None and node.expanded and node.terminal is None:
            a = _puct_argmax(m, node)
            expected.append((node, a))
            node = node.children[a]
        before = [(list(n.N), list(n.W), n.n_sum, list(n.visited)) for n, _ in expected]
        path, leaf = m._select()
        assert [(id(n), a) for n, a in path] == [(id(n), a) for n, a in expected]
        m._undo_virtual(path)
        assert [(list(n.N), list(n.W), n.n_sum, list(n.visited)) for n, _ in expected] == before
        again, _ = m._select()  # the same state gives the same descent
        assert [a for _, a in again] == [a for _, a in path]
        m._undo_virtual(again)
        m.evaluate_pending(m.collect(8))
    assert m.root.visits > 40


def test_candidate_moves_are_legal_moves_minus_own_eyes():
    rng = random.Random(3)
    for n in (5, 7):
        for _ in range(15):
            b = Board(n)
            while not b.is_over():
                mask = b.legal_mask()
                ref = [p for p in range(n * n) if mask[p] and not b.is_eye(p, b.to_play)]
                if b.passes > 0 or not ref:
                    ref.append(n * n)
                assert b.candidate_moves() == ref
                moves = b.legal_moves()
                b.play(rng.choice(moves) if len(moves) > 1 and rng.random() > 0.05 else b.pass_move)


def test_batched_features_and_priors_match_one_by_one():
    rng = random.Random(0)
    boards = [Board(7)]
    for _ in range(12):  # early positions (short history) and later ones
        b = boards[-1].copy()
        b.play(rng.choice(b.candidate_moves()))
        boards.append(b)
    x = features_batch(boards)
    assert x.shape == (len(boards), 10, 7, 7) and x.dtype == np.float32
    for b, xb in zip(boards, x, strict=True):
        me = b.to_play
        past = [b.stones, *b.history[:3]] + [[0] * 49] * (3 - len(b.history[:3]))
        ref = np.zeros((10, 49), np.float32)
        for k, stones in enumerate(past):
            ref[2 * k] = [v == me for v in stones]
            ref[2 * k + 1] = [v == -me for v in stones]
        ref[8] = me == BLACK
        ref[9] = 1
        assert np.array_equal(xb, ref.reshape(10, 7, 7))
        assert np.array_equal(features(b), xb)
    logits = np.random.default_rng(0).normal(size=(len(boards), 50)).astype(np.float32) * 4
    masks = [b.candidate_moves() for b in boards]
    for i, (p, idx) in enumerate(zip(masked_priors(logits, masks), masks, strict=True)):
        z = np.exp(logits[i, idx] - logits[i, idx].max())
        assert p.shape == (len(idx),) and np.allclose(p, z / z.sum(), rtol=1e-5, atol=1e-7)
        assert np.allclose(masked_priors(logits[i : i + 1], [idx])[0], p, rtol=1e-5, atol=1e-7)


def test_dirichlet_noise_and_temperature():
    ev = Evaluator(GoNet(NetConfig(1, 8)))
    m = MCTS(ev, rng=np.random.default_rng(0))
    m.set_root(Board(5))
    m.evaluate_pending(m.collect(1))
    before = m.root.P.copy()
    m.add_noise()
    assert not np.allclose(before, m.root.P) and m.root.P.sum() == pytest.approx(1.0)
    res = m.search(Board(5), 64, reuse=True)
    rng = np.random.default_rng(0)
    picks = {res.sample(1.0, rng) for _ in range(50)}
    assert len(picks) > 1  # temperature 1 samples
    assert {res.sample(0.0, rng) for _ in range(5)} == {res.best()}


def test_selfplay_samples_and_symmetry():
    from deepapps_games.go.train import symmetry

    ev = Evaluator(GoNet(NetConfig(1, 8)))
    cfg = SelfPlayConfig(size=5, visits=16, fast_visits=4, full_prob=0.5, concurrent=3, leaves_per_game=2)
    s, stats = selfplay(ev, cfg, 3, seed=0)
    assert stats["games"] == 3 and len(s) == stats["positions"] > 0
    assert s.x.shape[1:] == (10, 5, 5) and s.pi.shape[1] == 26
    assert np.allclose(s.pi.sum(1), 1.0, atol=1e-5)
    assert set(np.unique(s.z)) <= {-1.0, 1.0}
    # the 8 symmetries are distinct permutations that keep policy mass and pass
    x0, pi0, own0 = s.x[:1], s.pi[:1], s.own[:1]
    seen = set()
    for k in range(8):
        x, pi, own = symmetry(x0, pi0, own0, k)
        assert pi.sum() == pytest.approx(pi0.sum()) and pi[0, -1] == pi0[0, -1]
        assert x.sum() == x0.sum() and own.sum() == own0.sum()
        seen.add(x.tobytes() + pi.tobytes())
    # a point move maps consistently between stones and policy: rotate a one-hot
    one = np.zeros((1, 26), np.float32)
    one[0, 1] = 1
    planes = np.zeros((1, 10, 5, 5), np.uint8)
    planes[0, 0, 0, 1] = 1
    x, pi, _ = symmetry(planes, one, np.zeros((1, 25), np.int8), 1)
    assert np.argmax(pi[0, :25]) == int(np.flatnonzero(x[0, 0].ravel())[0])


def test_training_loop_end_to_end_and_resume(tmp_path):
    from deepapps_games.go.train import TrainConfig, run_training

    cfg = TrainConfig(
        size=5,
        blocks=1,
        channels=8,
        workers=1,
        minutes=30,  # max_games stops it; minutes counts across resumes
        max_games=8,
        visits=8,
        fast_visits=4,
        concurrent=4,
        games_per_chunk=4,
        min_buffer=16,
        batch_size=16,
        reuse=2,
        gate_every=4,
        gate_games=2,
        gate_visits=4,
        eval_games=2,
        eval_visits=4,
    )
    out = run_training(cfg, tmp_path, show_progress=False)
    assert out["games"] >= 8 and out["steps"] > 0 and out["device"] == "cpu" and out["world_size"] == 1
    assert out["stage_seconds"]["train"] > 0
    for name in ("model.safetensors", "best.safetensors", "metrics.jsonl", "metrics.png", "elo.png"):
        assert (tmp_path / name).exists(), name
    state_dir = tmp_path / "checkpoint"
    manifest = json.loads((state_dir / "state.json").read_text())
    assert set(manifest["files"]) == {
        "candidate.safetensors",
        "best.safetensors",
        "optimizer.safetensors",
        "replay.safetensors",
    }
    assert manifest["state"]["steps"] == out["steps"] and manifest["state"]["games"] == out["games"]
    assert not (tmp_path / ".checkpoint.new").exists() and not (tmp_path / ".checkpoint.old").exists()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows and {
        "gate_win_rate",
        "win_rate_vs_random",
        "elo",
        "policy_loss",
        "value_loss",
        "ownership_loss",
    } <= set(rows[-1])
    net, meta = load_net(tmp_path / "model.safetensors")
    assert meta["train_config"]["size"] == 5
    # a crash mid-write left a torn last line: resume drops it with a warning, keeps every whole
    # row byte for byte and appends the new rows after them; the counters continue
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"games": 99, "pol')
    cfg.max_games = 12
    with pytest.warns(RuntimeWarning, match="torn last line"):
        out2 = run_training(cfg, tmp_path, resume=True, show_progress=False)
    assert out2["games"] >= 12 and out2["steps"] > out["steps"]
    lines2 = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert lines2[: len(lines)] == lines and len(lines2) > len(lines)
    assert all(json.loads(line)["games"] >= 12 for line in lines2[len(lines) :])
    # the trained model plays a match against the random player
    rep = match(MCTSPlayer(Evaluator(net), visits=8), RandomPlayer(0), 2, 5, 7.5)
    assert rep["games"] == 2 and 0 <= rep["wins"] <= 2


def test_wilson_interval():
    lo, hi = wilson(95, 100)
    assert lo == pytest.approx(0.8882, abs=1e-3) and hi == pytest.approx(0.9785, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0


GTP_SCRIPT = """protocol_version
1 name
boardsize 5
komi 6.5
play black C3
play white C3
play white Z9
genmove white
frobnicate
boardsize 99
undo
showboard
final_score
known_command genmove
known_command dance
list_commands
quit
"""


def test_gtp_scripted_exchange(tiny_model):
    from deepapps_games.go.gtp import GTPEngine, load_player

    player, meta = load_player(str(tiny_model), visits=8)
    engine = GTPEngine(player, size=meta["size"], komi=meta["komi"])
    out = io.StringIO()
    engine.serve(io.StringIO(GTP_SCRIPT), out)
    replies = [r for r in out.getvalue().split("\n\n") if r]
    assert replies[0] == "= 2"
    assert replies[1] == "=1 deepapps-go"
    assert replies[2:5] == ["=", "=", "="]
    assert replies[5].startswith("? illegal move") and "occupied" in replies[5]
    assert replies[6].startswith("? invalid coordinate")
    assert replies[7].startswith("= ") and len(replies[7].split()[1]) >= 2  # a vertex
    assert replies[8] == "? unknown command"
    assert replies[9].startswith("? unacceptable size")
    assert replies[10] == "="
    assert "X" in replies[11] and "O" not in replies[11]  # undo removed white's move
    assert replies[12] == "= B+18.5"  # one black stone owns the 5x5 board: 25 - 6.5
    assert replies[13:15] == ["= true", "= false"]
    assert "genmove" in replies[15] and "final_score" in replies[15]
    assert replies[16] == "=" and engine.quit


def test_gtp_cli_subprocess(tiny_model):
    proc = subprocess.run(
        [sys.executable, "-m", "deepapps.cli", "go", "gtp", "--model", str(tiny_model), "--visits", "8"],
        input="boardsize 5\nplay b A1\ngenmove w\nplay b A1\nquit\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    replies = [r for r in proc.stdout.split("\n\n") if r]
    assert replies[0] == "=" and replies[1] == "="
    assert replies[2].startswith("= ")
    assert replies[3].startswith("? illegal move")
    assert replies[-1] == "="


def test_game_against_gnugo_5x5(tiny_model):
    from deepapps_games.go.arena import find_gnugo, run_arena

    if find_gnugo() is None:
        pytest.skip("gnugo is not installed (apt-get install gnugo); skipping the GNU Go game")
    rep = run_arena(
        model=str(tiny_model),
        opponent="gnugo",
        level=1,
        games=2,
        size=5,
        komi=7.5,
        visits=8,
        show_progress=False,
    )
    assert rep["games"] == 2 and [g for g, _ in rep["results"]] == [0, 1]
    # count our wins from the result strings (we are black in even games) and check the report's
    # tallies and interval against them
    won = [(g % 2 == 0) == result.startswith("B+") for g, result in rep["results"]]
    assert all(result[:2] in ("B+", "W+") for _, result in rep["results"])
    assert rep["wins"] == sum(won) and rep["win_rate"] == sum(won) / 2
    assert rep["wins_as_black"] == int(won[0]) and rep["wins_as_white"] == int(won[1])
    assert rep["ci95"] == [round(v, 4) for v in wilson(sum(won), 2)]


def test_agent_plays_inside_pettingzoo(tiny_model):
    pytest.importorskip("pettingzoo")
    from deepapps_games.go.pz import PettingZooAgent, RandomEnvAgent, play_in_env

    net, _ = load_net(tiny_model)
    agent = PettingZooAgent(Evaluator(net), visits=8)
    out = play_in_env(agent, RandomEnvAgent(0), size=5, komi=7.5)
    assert out["steps"] > 5
    assert sorted(out["rewards"].values()) == [-1, 1]


def test_sgf_round_trip_and_errors(tmp_path):
    from deepapps_games.go.sgf import parse_sgf, read_sgf, write_sgf

    moves = [gtp_to_move(v, 7) for v in ("D4", "C3", "pass", "E5")]
    text = write_sgf(moves, 7, 7.5, result="B+3.5", black="me", white="you]x")
    game = parse_sgf(text)
    assert [m for _, m in game.moves] == moves and game.komi == 7.5 and game.properties["PW"] == "you]x"
    assert [c for c, _ in game.moves] == [BLACK, WHITE, BLACK, WHITE]
    # variations: the main line is the first branch
    g2 = parse_sgf("(;SZ[5]AB[aa][bb];B[cc](;W[dd];B[ee])(;W[ab]))")
    assert len(g2.moves) == 3 and g2.setup_black == [0, 6]
    for bad, msg in [
        ("hello", "no '('"),
        ("(;SZ[7];B[cc]", "expected ')'"),
        ("(;SZ[7];B[zz])", "bad point"),
        ("(;SZ[7];B[cc];W[cc])", "illegal"),
        ("(;SZ[abc])", "board size"),
        ("(;GM[3])", "not Go"),
    ]:
        with pytest.raises(InputError, match=re.escape(msg)):
            parse_sgf(bad)
    p = tmp_path / "g.sgf"
    p.write_text(text)
    assert read_sgf(p).size == 7
    with pytest.raises(InputError, match="does not exist"):
        read_sgf(tmp_path / "missing.sgf")


def test_runner_analyses_sgf_and_move_lists(tiny_model, tmp_path):
    from deepapps.resolution import ModelRef
    from deepapps_games.go.runner import make_runner

    ref = ModelRef(kind="path", name=str(tiny_model), local_path=tiny_model)
    runner = make_runner(ref, "cpu", "fp32").with_defaults(visits=24)
    res = runner("C3 B2 pass")
    assert res.size == 5 and res.to_play == "white" and res.moves_played == 3
    assert 0.0 <= res.win_probability <= 1.0 and res.visits >= 23
    assert sum(m["visits"] for m in res.top_moves) <= res.visits and res.top_moves[0]["move"] == res.best_move
    d = res.to_dict()
    assert "top_moves" in d and "_board" not in d
    assert res.plot().size[0] > 100
    sgf = tmp_path / "g.sgf"
    sgf.write_text("(;GM[1]SZ[5]KM[0.5];B[cc];W[bb])")
    res2 = runner(str(sgf))
    assert res2.to_play == "black" and res2.komi == 0.5 and "sgf" in res2.source
    with pytest.raises(InputError):
        runner("C3 C3")
    with pytest.raises(InputError):
        runner("Q99")


def test_teacher_games_pretrain_and_init(tmp_path):
    """GNU Go games become (position, GNU Go's move, outcome, ownership) data; a net fits it and
    seeds self-play training."""
    from deepapps_games.go.arena import find_gnugo
    from deepapps_games.go.teacher import generate, load_teacher, pretrain
    from deepapps_games.go.train import TrainConfig, run_training

    if find_gnugo() is None:
        pytest.skip("gnugo is not installed (apt-get install gnugo); skipping the teacher games")
    rep = generate(6, tmp_path / "t.safetensors", size=5, opening=2, eps=0.1, seed=3, show_progress=False)
    data, meta = load_teacher(tmp_path / "t.safetensors")
    assert meta["games"] == 6 and rep["positions"] == len(data["z"]) > 6
    assert data["x"].shape[1:] == (10, 5, 5) and set(np.unique(data["z"])) <= {-1.0, 1.0}
    # every recorded move lands on an empty point (planes 0 and 1: own and opponent stones now)
    for x, m in zip(data["x"][:40], data["move"][:40], strict=True):
        if m < 25:
            assert x[0].flat[m] == 0 and x[1].flat[m] == 0
    # the outcome is the same for both players of a game, with opposite signs by colour
    black_to_move = data["x"][:, 8, 0, 0] == 1
    for g in np.unique(data["game"]):
        sel = data["game"] == g
        zb = data["z"][sel & black_to_move]
        zw = data["z"][sel & ~black_to_move]
        assert len(set(zb)) <= 1 and len(set(zw)) <= 1
        if len(zb) and len(zw):
            assert zb[0] == -zw[0]
    out = pretrain(
        tmp_path / "t.safetensors",
        tmp_path / "pre",
        blocks=1,
        channels=8,
        steps=30,
        batch=32,
        eval_every=15,
        holdout=0.34,
        show_progress=False,
    )
    assert out["held_out_positions"] > 0 and 0 <= out["held_out"]["move_top1"] <= 1
    net, m2 = load_net(out["model"])
    assert m2["size"] == 5 and m2["stage"].startswith("supervised")
    rows = [json.loads(line) for line in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [15, 30]
    cfg = TrainConfig(
        size=5,
        init=out["model"],
        workers=1,
        max_games=4,
        visits=4,
        fast_visits=2,
        concurrent=2,
        games_per_chunk=2,
        min_buffer=8,
        batch_size=8,
        reuse=1,
        gate_every=1000,
        eval_games=2,
        eval_visits=2,
        gate_games=2,
        gate_visits=2,
    )
    res = run_training(cfg, tmp_path / "rl", show_progress=False)
    tuned, m3 = load_net(res["model"])
    assert tuned.config.blocks == 1 and tuned.config.channels == 8 and m3["train_config"]["init"]


def test_bundled_models_carry_their_board_size():
    from deepapps_games.go.gtp import load_player

    for name, n in (("go-7x7", 7), ("go-7x7-zero", 7), ("go-9x9", 9)):
        player, meta = load_player(name, visits=16)
        assert meta["size"] == n and meta["komi"] == 7.5
        res = player.analyse(Board(n, komi=7.5), visits=16)
        assert res.n == n and res.total_visits >= 15 and len(res.policy) == n * n + 1
