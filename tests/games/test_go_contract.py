"""Go on the core contract: declared options (typos, types, ranges refused before any model loads),
input checks before loading, exact visit counts, ModelRefs for eval/bench/arena, one network
load per process, and no model-name resolution left in the plugin."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import deepapps
from deepapps import InputError, OptionError
from deepapps.cli import cli
from deepapps.resolution import ModelRef, resolve_model
from deepapps_games import plugin
from deepapps_games.go import runner as go_runner

GO_DIR = Path(plugin.__file__).parent / "go"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from deepapps_games.go.net import GoNet, NetConfig, save_net

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("go-contract") / "tiny.safetensors"
    save_net(path, GoNet(NetConfig(blocks=1, channels=8)), {"size": 5, "komi": 6.5})
    return path


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if anything builds the Go runner (the checks must come first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad option/input was refused")

    monkeypatch.setattr(go_runner, "make_runner", refuse)
    deepapps.clear_cache()


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


# --- declared options ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "go", "D4", "--vists", "50"],
            "unknown option --vists for deepapps run go (did you mean --visits?)",
        ),
        (["run", "go", "D4", "--visits", "abc"], "option --visits: expected a whole number, got 'abc'"),
        (["run", "go", "D4", "--size", "30"], "option --size: 30 is above the maximum 25"),
        (["run", "go", "D4", "--size", "1"], "option --size: 1 is below the minimum 2"),
        (["run", "go", "D4", "--komi", "inf"], "option --komi: expected a finite number"),
        (["run", "go", "D4", "--visits", "0"], "option --visits: 0 is below the minimum 1"),
        (["run", "go", "D4", "--visits", "20000"], "option --visits: 20000 is above the maximum 10000"),
        (["eval", "go", "--opponent", "gnu"], "'gnu' is not one of random, gnugo (did you mean gnugo?)"),
        (["eval", "go", "--level", "11"], "option --level: 11 is above the maximum 10"),
        (["bench", "go", "--compare-precisions", "fp16"], "'fp16' is not one of fp32, bf16"),
        (["bench", "go", "--batch", "16,x"], "option --batch: expected a whole number, got 'x'"),
        (["bench", "go", "--vists", "3"], "did you mean --visits?"),
    ],
)
def test_bad_options_get_one_line_errors_before_loading(no_model_load, args, message):
    out = _run(*args)
    assert out.exit_code != 0
    assert message in out.output
    assert len(out.output.strip().splitlines()) == 1, out.output
    assert "Traceback" not in out.output


def test_python_api_checks_the_same_declaration(no_model_load):
    with pytest.raises(OptionError, match="did you mean --visits"):
        deepapps.load("go", vists=3)
    with pytest.raises(OptionError, match="above the maximum 25"):
        deepapps.load("go", size=30)


def test_declared_defaults_match_the_functions():
    from deepapps_games.go.bench import bench
    from deepapps_games.go.evaluate import evaluate

    spec = deepapps.registry.task("go")
    assert spec.distributed and spec.precisions == ("fp32", "bf16") and spec.input_kind == "custom"
    checks = [
        (spec.options, inspect.signature(go_runner.GoRunner.run_one)),
        (spec.eval_options, inspect.signature(evaluate)),
        (spec.bench_options, inspect.signature(bench)),
    ]
    for options, sig in checks:
        assert options
        for opt in options:
            assert opt.name in sig.parameters, opt.name
            assert sig.parameters[opt.name].default == opt.default, opt.name
    assert {o.name for o in spec.options} == {"visits", "batch", "top", "size", "komi", "ply"}
    from deepapps_games.go.mcts import MAX_VISITS

    assert all(o.max == MAX_VISITS for opts in checks for o in opts[0] if o.name == "visits")
    assert all(o.when == "call" for o in spec.options)  # one loaded model serves every setting


# --- inputs ----------------------------------------------------------------------------------------
def test_bad_inputs_are_refused_before_loading(no_model_load, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    picture = tmp_path / "cat.jpg"
    picture.write_bytes(b"\xff\xd8")
    for arg, message in [
        (str(photos), "is a folder; pass an SGF file, SGF text or a move list"),
        (str(tmp_path / "missing.sgf"), "SGF file not found"),
        (str(picture), "not an .sgf file"),
        ("photos/", "is not a move, and no such SGF file exists"),
        ("D4 Q99x", "'Q99x' is not a move"),
    ]:
        out = _run("run", "go", arg)
        assert out.exit_code != 0 and message in out.output, (arg, out.output)
        assert "Traceback" not in out.output


def test_check_input_accepts_positions_and_imports_no_torch(tmp_path):
    sgf = tmp_path / "g.sgf"
    sgf.write_text("(;GM[1]SZ[5];B[cc])")
    for ok in ("D4 C3 pass", "B C3, W D4", "(;GM[1]SZ[5];B[cc])", str(sgf), "", "empty"):
        go_runner.check_input(ok)
    with pytest.raises(InputError):
        go_runner.check_input(str(tmp_path))
    code = (
        "import sys; from deepapps.registry import registry; from deepapps.specs import resolve; "
        "resolve(registry.task('go').check_input)('D4 C3'); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- the runner ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("visits", "batch"), [(1, 1), (7, 1), (24, 8), (120, 16)])
def test_visits_are_counted_exactly(tiny_model, visits, batch):
    runner = deepapps.load("go", str(tiny_model), device="cpu", precision="fp32")
    res = runner("C3 B2", visits=visits, batch=batch, top=26)
    assert res.visits == visits
    assert sum(m["visits"] for m in res.top_moves) == visits


def test_runner_result_names_its_input_and_position(tiny_model, tmp_path):
    runner = go_runner.make_runner(resolve_model("go", str(tiny_model)), "cpu", "fp32")
    assert (runner.size, runner.komi, runner.precision) == (5, 6.5, "fp32")
    res = runner("C3 B2 pass", visits=16)
    assert res.size == 5 and res.to_play == "white" and res.moves_played == 3 and res.komi == 6.5
    assert (
        res.source == "C3 B2 pass" and res.last_move == "pass" and res.best_move == res.top_moves[0]["move"]
    )
    assert len(res.ownership) == 25 and all(-1 <= v <= 1 for v in res.ownership)
    assert res.black_win_probability == pytest.approx(1 - res.win_probability, abs=1e-4)
    assert set(res.timings) == {"load", "parse", "search", "postprocess", "total"}
    d = res.to_dict()
    assert "_board" not in d and d["visits"] == 16
    assert res.plot().size == (4 * 48 + 96,) * 2
    sgf = tmp_path / "g.sgf"
    sgf.write_text("(;GM[1]SZ[5]KM[0.5];B[cc];W[bb];B[dd])")
    res2 = runner(str(sgf), ply=2, visits=8)
    assert res2.to_play == "black" and res2.komi == 0.5 and res2.last_move == "B4" and res2.moves_played == 2
    # the batched value curve (the page's SGF graph) agrees with each result's value head
    board, _ = go_runner.parse_position("C3 B2 pass", 5, 6.5)
    black = go_runner.parse_position("C3 B2", 5, 6.5)[0]
    curve = runner.black_values([black, board])
    assert curve[0] == pytest.approx(runner("C3 B2", visits=1).network_win_probability, abs=2e-4)
    assert curve[1] == pytest.approx(1 - res.network_win_probability, abs=2e-4)
    with pytest.raises(InputError, match="illegal"):
        runner("C3 C3")
    with pytest.raises(InputError):
        runner("Q99")
    with pytest.raises(OptionError, match="did you mean --visits"):
        runner("C3", vists=3)


# --- eval, bench and the arena take the core's ModelRef ---------------------------------------------
def test_eval_and_bench_take_a_model_ref_and_load_once(tiny_model, monkeypatch):
    from deepapps_games.go import net
    from deepapps_games.go.bench import bench
    from deepapps_games.go.evaluate import evaluate

    loads = []
    real = net.load_net
    monkeypatch.setattr(net, "load_net", lambda *a, **k: loads.append(a) or real(*a, **k))
    deepapps.clear_cache()
    ref = resolve_model("go", str(tiny_model))
    assert isinstance(ref, ModelRef) and ref.kind == "path"
    report = evaluate(ref, limit=2, visits=2, device="cpu", precision="fp32")
    assert report.n == 2 and report.dataset == "random" and report.model == str(tiny_model)
    assert report.split.startswith("5x5 komi 6.5") and 0 <= report.metrics["wins"] <= 2
    assert len(loads) == 1  # the parent read size/komi from the metadata; one network for both games
    figures = bench(
        ref,
        device="cpu",
        precision="fp32",
        visits=4,
        batch=(2,),
        positions=1,
        rounds=1,
        selfplay_games=0,
        threads=1,
        compare_precisions=("fp32",),
        scale_games=0,
    ).figures
    assert {"mcts_sims_per_s_batch1", "mcts_sims_per_s_batch2", "batched_speedup_batch2"} <= set(figures)
    assert figures["mcts_sims_per_s_batch2"]["value"] > 0
    assert len(loads) == 1  # bench reused the network eval loaded (deepapps.load's cache)


def test_cli_eval_and_arena_resolve_through_the_core(tiny_model):
    out = _run("eval", "go", "--model", str(tiny_model), "--limit", "2", "--visits", "2", "--json")
    assert out.exit_code == 0, out.output
    assert '"n": 2' in out.output
    from deepapps_games.go.cli import go_group

    bad = CliRunner().invoke(go_group, ["arena", "--model", "go-7x7x", "--games", "1"])
    assert bad.exit_code != 0 and "did you mean 'go-7x7'?" in str(bad.exception)
    ok = CliRunner().invoke(
        go_group,
        [
            "arena",
            "--model",
            str(tiny_model),
            "--opponent",
            "random",
            "--games",
            "2",
            "--visits",
            "2",
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert '"games": 2' in ok.output and '"size": 5' in ok.output


def test_no_model_name_resolution_left_in_the_plugin():
    for name in ("runner.py", "evaluate.py", "bench.py", "cli.py", "arena.py", "ui.py"):
        text = (GO_DIR / name).read_text()
        assert "go-7x7" not in text, name
        assert "has_model" not in text and "deepapps.resolve_model" not in text, name
        assert "**_" not in text, name
