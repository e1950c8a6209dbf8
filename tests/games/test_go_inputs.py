"""Untrusted Go inputs: SGF text and GTP command lines give a result or a clear error, never a crash.

Property-based (hypothesis) for the SGF parser and the GTP interpreter, plus the regressions of
issue 13: deep nesting, non-finite komi, loadsgf's setup stones and move numbers, the visit cap.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepapps import InputError
from deepapps_games.go.board import BLACK, WHITE, Board, gtp_to_move
from deepapps_games.go.gtp import GTPEngine
from deepapps_games.go.mcts import MAX_VISITS
from deepapps_games.go.net import Evaluator, GoNet, NetConfig
from deepapps_games.go.selfplay import MCTSPlayer
from deepapps_games.go.sgf import parse_sgf, read_sgf, write_sgf

torch.set_num_threads(1)
torch.manual_seed(0)
_NET = GoNet(NetConfig(blocks=1, channels=8))
SETTINGS = settings(
    max_examples=80,
    deadline=timedelta(seconds=5),  # a hang fails the example instead of stalling the suite
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)


def _engine(size: int = 5) -> GTPEngine:
    return GTPEngine(MCTSPlayer(Evaluator(_NET), visits=4, batch=4), size=size, komi=7.5)


# --------------------------------------------------------------------------------------------
# SGF

SGF_PIECES = [
    "(",
    ")",
    ";",
    "(;",
    ";B[",
    ";W[",
    "]",
    "[",
    "\\",
    "\\]",
    ":",
    " ",
    "\n",
    "SZ[5]",
    "SZ[9]",
    "SZ[19:19]",
    "SZ[0]",
    "SZ[99999999999999]",
    "SZ[٣]",
    "KM[7.5]",
    "KM[nan]",
    "KM[-inf]",
    "KM[1e400]",
    "KM[abc]",
    "KM[]",
    "GM[1]",
    "GM[3]",
    "FF[4]",
    "PL[B]",
    "PL[W]",
    "PL[x]",
    "AB[aa]",
    "AW[bb]",
    "AE[aa]",
    "AB[aa:cc]",
    "AB[:aa]",
    "AB[tt]",
    "AW[aa][ab][ba]",
    "B[cc]",
    "W[dd]",
    "B[]",
    "W[tt]",
    "B[zz]",
    "B[a]",
    "B[abc]",
    "C[a comment]",
    "PB[x]",
    "RE[B+R]",
    "aa",
    "cc",
    "tt",
    "xY",
    "é",
    "\x00",
]


@SETTINGS
@given(st.lists(st.sampled_from(SGF_PIECES), max_size=40).map("".join))
def test_sgf_pieces_parse_or_raise_input_error(text):
    _parse_or_input_error(text)


@SETTINGS
@given(st.text(alphabet="();[]\\:ABWEKMSZPLabcdt015.-n \n", max_size=120))
def test_sgf_random_text_parses_or_raises_input_error(text):
    _parse_or_input_error(text)


@st.composite
def _sgf_trees(draw, depth: int = 0):
    """Well-formed SGF game trees: random moves and setup on 5x5, random nesting of variations."""
    points = st.sampled_from(["aa", "bb", "cc", "dd", "ee", "ab", "ba", "", "ac", "ca"])
    props = st.lists(
        st.tuples(
            st.sampled_from(["B", "W", "AB", "AW", "AE", "C"]), st.lists(points, min_size=1, max_size=3)
        ),
        max_size=3,
    )
    nodes = draw(st.lists(props, min_size=1, max_size=4))
    text = "".join(";" + "".join(k + "".join(f"[{v}]" for v in vs) for k, vs in node) for node in nodes)
    if depth < 3:
        text += "".join(draw(st.lists(_sgf_trees(depth + 1), max_size=2)))
    return f"({text})"


@settings(SETTINGS, max_examples=40)
@given(_sgf_trees())
def test_structured_sgf_games_parse_or_raise_input_error(tree):
    _parse_or_input_error("(;SZ[5]" + tree[2:])


def _parse_or_input_error(text: str) -> None:
    try:
        game = parse_sgf(text)
    except InputError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and len(msg) < 400  # one clear line
        return
    board = game.board_at()
    assert isinstance(board, Board) and 2 <= game.size <= 19
    assert all(0 <= p < game.size**2 for p in game.setup_black + game.setup_white)
    assert abs(game.komi) <= 625


def test_deeply_nested_variations_parse_without_recursion(monkeypatch):
    """1,200 (and 20,000) nested variations: the scanner is iterative, the main line is kept."""
    moves = [f"{a}{b}" for a in "abcdefghi" for b in "abcdefghi"]
    text = "(;SZ[9]" + "".join(f"(;{'BW'[i % 2]}[{moves[i % 81]}]" for i in range(1200)) + ")" * 1201
    with pytest.raises(InputError, match="illegal"):  # move 82 repeats an occupied point
        parse_sgf(text)
    legal = "(;SZ[9]" + "".join(f"(;{'BW'[i % 2]}[{moves[i]}]" for i in range(60)) + ")" * 61
    assert len(parse_sgf(legal).moves) == 60
    deep = "(;SZ[9]" + "(;C[x]" * 20_000 + ")" * 20_001
    assert parse_sgf(deep).moves == []
    with pytest.raises(InputError, match="not closed"):
        parse_sgf("(;SZ[9]" + "(;C[x]" * 20_000)
    # a second variation at every level is not kept, however deep; the kept main line is capped
    side = "(;SZ[9];B[aa]" + "(;W[bb])(;C[x]" * 5_000 + ")" * 5_001
    assert [m for _, m in parse_sgf(side).moves] == [0, 10]
    monkeypatch.setattr("deepapps_games.go.sgf.MAX_MAIN_LINE_VALUES", 1_000)
    with pytest.raises(InputError, match="more than 1,000 nodes"):
        parse_sgf("(" + ";" * 1_001 + ")")


@pytest.mark.parametrize("km", ["nan", "NaN", "inf", "-inf", "1e400", "1000", "-626"])
def test_non_finite_or_absurd_komi_is_rejected(km):
    with pytest.raises(InputError, match=re.escape(f"KM[{km}]")):
        parse_sgf(f"(;SZ[9]KM[{km}])")
    with pytest.raises(InputError, match="finite number"):
        Board(9, komi=float(km))
    reply = _engine().handle(f"komi {km}")
    assert reply.startswith("? komi must be a finite number") and reply.endswith("\n\n")


def test_sgf_setup_stones_and_player_round_trip():
    game = parse_sgf("(;SZ[5]KM[0.5]AB[aa][bb:bc]AW[ee]AE[bc]PL[W];W[cc];B[dd])")
    assert game.setup_black == [0, 6] and game.setup_white == [24] and game.first_player == WHITE
    again = parse_sgf(
        write_sgf(
            game.moves, 5, 0.5, setup_black=game.setup_black, setup_white=game.setup_white, first_player=WHITE
        )
    )
    assert (again.setup_black, again.setup_white, again.first_player, again.moves) == (
        game.setup_black,
        game.setup_white,
        game.first_player,
        game.moves,
    )
    for bad, msg in [
        ("(;SZ[5]AB[tt])", "pass"),
        ("(;SZ[5]AB[:aa])", "corner"),
        ("(;SZ[5]AB[aa]AW[ab][ba])", "liberties"),
    ]:
        with pytest.raises(InputError, match=msg):
            parse_sgf(bad)


def test_read_sgf_refuses_folders_and_huge_files(tmp_path):
    with pytest.raises(InputError, match="not a file"):
        read_sgf(tmp_path)
    big = tmp_path / "big.sgf"
    big.write_bytes(b"(;C[" + b"x" * (8 * 1024 * 1024) + b"])")
    with pytest.raises(InputError, match="larger than 8 MB"):
        read_sgf(big)


# --------------------------------------------------------------------------------------------
# GTP

COMMANDS = [
    "protocol_version",
    "name",
    "version",
    "known_command",
    "list_commands",
    "boardsize",
    "clear_board",
    "komi",
    "play",
    "genmove",
    "undo",
    "showboard",
    "final_score",
    "loadsgf",
    "printsgf",
    "time_settings",
    "time_left",
    "deepapps-analyze",
    "frobnicate",
    "",
]
ARGS = [
    "b",
    "w",
    "black",
    "WHITE",
    "x",
    "C3",
    "c3",
    "A1",
    "E5",
    "T19",
    "Z9",
    "pass",
    "PASS",
    "I3",
    "A0",
    "A٣",
    "5",
    "7",
    "19",
    "4",
    "0",
    "-1",
    "3",
    "10000",
    "10001",
    "99999999999999999999",
    "²",
    "7.5",
    "nan",
    "inf",
    "-0",
    "1e308",
    "",
    "@SGF",
    "@DIR",
    "@MISSING",
]


@pytest.fixture()
def sgf_files(tmp_path):
    f = tmp_path / "g.sgf"
    f.write_text("(;GM[1]SZ[5]KM[0.5]AB[aa]AW[ee]PL[W];W[cc];B[dd];W[bb])")
    return {"@SGF": str(f), "@DIR": str(tmp_path), "@MISSING": str(tmp_path / "nope.sgf")}


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "1 ", "42 ", "٣ "]),
            st.sampled_from(COMMANDS),
            st.lists(st.sampled_from(ARGS), max_size=3),
            st.sampled_from(["", " # comment", "\t", "\r", "\x01"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_gtp_command_lines_get_a_well_formed_reply(sgf_files, lines):
    engine = _engine()
    for cid, cmd, args, tail in lines:
        line = cid + " ".join([cmd, *(sgf_files.get(a, a) for a in args)]) + tail
        reply = engine.handle(line)
        if reply is None:  # nothing but whitespace/comments
            assert not line.split("#")[0].strip(" \t\r\x01")
            continue
        assert reply[0] in "=?" and reply.endswith("\n\n") and "\n\n" not in reply[:-2], repr(reply)
        assert "internal error" not in reply, (line, reply)
        assert engine.board.n == engine.size and 5 <= engine.size <= 19


@SETTINGS
@given(st.text(max_size=60))
def test_gtp_arbitrary_text_never_crashes(text):
    reply = _engine().handle(text)
    assert reply is None or (reply[0] in "=?" and reply.endswith("\n\n") and "internal error" not in reply)


def test_gtp_long_line_is_refused():
    assert _engine().handle("play b " + "A" * 10_000).startswith("? command line longer")


def test_loadsgf_applies_setup_and_counts_moves_from_one(sgf_files):
    """GTP 2: replay up to the position *before* move N (1 = the setup position)."""
    path = sgf_files["@SGF"]
    engine = _engine()

    def stones() -> tuple[list[int], list[int]]:
        s = engine.board.stones
        return [p for p, v in enumerate(s) if v == BLACK], [p for p, v in enumerate(s) if v == WHITE]

    c3, d2, b4 = (gtp_to_move(v, 5) for v in ("C3", "D2", "B4"))
    assert engine.handle(f"loadsgf {path}") == "=\n\n"
    assert stones() == ([0, d2], sorted([24, c3, b4])) and engine.board.to_play == BLACK
    assert engine.komi == 0.5 and engine.board.komi == 0.5
    assert engine.handle(f"loadsgf {path} 1") == "=\n\n"
    assert stones() == ([0], [24]) and engine.board.to_play == WHITE  # PL[W]
    assert engine.handle(f"loadsgf {path} 3") == "=\n\n"
    assert stones() == ([0, d2], [c3, 24]) and engine.board.to_play == WHITE
    assert engine.handle(f"loadsgf {path} 99") == "=\n\n" and len(engine.moves) == 3
    reply = engine.handle(f"loadsgf {path} 0")
    assert reply.startswith("? loadsgf's move number") and len(engine.moves) == 3  # state kept
    # undo walks back to the setup, not to an empty board; printsgf keeps the setup
    for _ in range(3):
        assert engine.handle("undo") == "=\n\n"
    assert engine.handle("undo").startswith("? cannot undo") and stones() == ([0], [24])
    assert "AB[aa]AW[ee]PL[W]" in engine.handle("printsgf")
    engine.handle("clear_board")
    assert stones() == ([], []) and engine.board.to_play == BLACK


def test_analysis_visits_are_capped():
    engine = _engine()
    assert engine.handle(f"deepapps-analyze {MAX_VISITS + 1}").startswith(
        f"? visits must be an integer from 1 to {MAX_VISITS:,}"
    )
    assert engine.handle("deepapps-analyze 0").startswith("? visits must be")
    reply = engine.handle("deepapps-analyze 6")
    assert reply.startswith("= winrate") and int(reply.split("visits ")[1].split()[0]) >= 5
    player = MCTSPlayer(Evaluator(_NET), visits=4)
    with pytest.raises(InputError, match="visits must be"):
        player.analyse(Board(5), visits=MAX_VISITS + 1)
    with pytest.raises(InputError, match="visits must be"):
        MCTSPlayer(Evaluator(_NET), visits=10**9)
