"""Streamlit page: play Go against the engine on a real, clickable board, or step through an SGF.

The page goes through the task's runner (``deepapps_ui.widgets.cached_runner("go", model)``, so
the model, device and option checks are the core's) and draws with ``GoAnalysis.plot()`` (the
same picture as ``deepapps run go ... --save``): wood, star points, shaded stones, the last move,
the engine's candidates (win rate over visits) and, on request, its ownership estimate. A click
on the picture (``streamlit-image-coordinates``) is mapped to the nearest intersection by the
renderer's own geometry; a move can also be typed. A graph shows Black's win probability over
the moves. SGF files are parsed from memory (nothing is written to disk).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

SIZES = (5, 7, 9, 13, 19)
TOP_MOVES = 8
MAX_CACHED = 400  # analyses kept per session (a long game at one visit setting)


@dataclass
class Engine:
    """The page's view of the runner: model, search visits and the display choices."""

    runner: Any
    model: str
    visits: int
    candidates: bool
    ownership: bool

    def cell(self, n: int) -> int:
        """Pixels between lines: about 560 px for any board, readable labels on 19×19."""
        return max(28, min(64, 560 // (n + 1)))

    def analyse(self, moves: list[int], size: int, komi: float, visits: int | None = None):
        """The runner's analysis of the position after ``moves`` (cached in the session)."""
        import streamlit as st

        from .board import move_to_gtp

        visits = visits or self.visits
        key = ("moves", self.model, visits, size, komi, tuple(moves))
        text = " ".join(move_to_gtp(m, size) for m in moves)
        result = _cached(
            st, key, lambda: self.runner(text, size=size, komi=komi, visits=visits, top=TOP_MOVES)
        )
        curve = st.session_state.setdefault("go_curve", {})
        curve[(self.model, size, komi, tuple(moves))] = result.black_win_probability
        return result

    def game_so_far(self, moves: list[int], size: int, komi: float) -> list[float | None]:
        """Black's win probability after each move of the game played here, from the searches
        already made (at whatever strength); a position never analysed is a gap."""
        import streamlit as st

        curve = st.session_state.get("go_curve", {})
        return [curve.get((self.model, size, komi, tuple(moves[:k]))) for k in range(len(moves) + 1)]

    def analyse_sgf(self, sgf: str, ply: int, visits: int | None = None):
        import streamlit as st

        visits = visits or self.visits
        key = ("sgf", self.model, visits, hashlib.sha1(sgf.encode()).hexdigest(), ply)
        return _cached(st, key, lambda: self.runner(sgf, ply=ply, visits=visits, top=TOP_MOVES))

    def game_curve(self, sgf: str, game) -> list[float]:
        """Black's win probability (value network) after each move of an SGF game (cached)."""
        import streamlit as st

        def compute() -> list[float]:
            return self.runner.black_values([game.board_at(k) for k in range(len(game.moves) + 1)])

        return _cached(st, ("curve", self.model, hashlib.sha1(sgf.encode()).hexdigest()), compute)

    def picture(self, result):
        return result.plot(candidates=self.candidates, ownership=self.ownership, cell=self.cell(result.size))


def _cached(st, key: tuple, compute):
    cache = st.session_state.setdefault("go_analyses", {})
    if key not in cache:
        if len(cache) >= MAX_CACHED:
            cache.pop(next(iter(cache)))
        cache[key] = compute()
    return cache[key]


def click_to_point(click: dict[str, Any] | None, n: int, cell: int) -> int | None:
    """The intersection nearest to a ``streamlit-image-coordinates`` click (its x, y are in the
    pixels of the image as shown, whose shown size is width × height)."""
    from .render import BoardGeometry

    if not click:
        return None
    geo = BoardGeometry(n, cell)
    return geo.point_at_scaled(
        click["x"], click["y"], click.get("width") or geo.size, click.get("height") or geo.size
    )


def _board_from_moves(size: int, komi: float, moves: list[int]):
    from .board import Board

    b = Board(size, komi=komi, max_moves=10 * size * size)
    for m in moves:
        b.play(m)
    return b


def render() -> None:
    """The Go page: 'Play' (you against the engine) and 'Analyse SGF' (step through a game)."""
    import streamlit as st

    from deepapps.errors import DeepAppsError
    from deepapps_ui import widgets

    st.title("Go: AlphaZero-style engine")
    st.caption(
        "Policy-value network + PUCT search. Each model is trained for one board size (its default "
        "below); other sizes work, but play weakly."
    )
    with st.sidebar:
        model = widgets.model_picker("go", key="go_model")
        visits = st.slider("Strength (search visits per move)", 8, 800, 100, step=8, key="go_visits")
        candidates = st.checkbox("Show the engine's candidate moves", value=True, key="go_show_candidates")
        ownership = st.checkbox(
            "Show ownership (who the network thinks owns each point)", key="go_show_ownership"
        )
    if not model:
        st.info("Enter the path of a Go network (.safetensors) or pick a registered model.")
        return
    try:
        runner = widgets.cached_runner("go", model)
    except DeepAppsError as exc:
        st.error(f"Cannot load this Go model: {exc}")
        return
    engine = Engine(runner, model, visits, candidates, ownership)
    tab_play, tab_sgf = st.tabs(["Play", "Analyse SGF"])
    with tab_play:
        _play_tab(st, engine)
    with tab_sgf:
        _sgf_tab(st, engine)


# --- play ------------------------------------------------------------------------------------------
def _play_tab(st, engine: Engine) -> None:
    from .board import BLACK, WHITE, gtp_to_move

    ss = st.session_state
    c1, c2, c3 = st.columns(3)
    default = engine.runner.size if engine.runner.size in SIZES else 7
    # keyed by model: picking another model starts from that model's board size and komi
    size = c1.selectbox("Board size", SIZES, index=SIZES.index(default), key=f"go_board_size-{engine.model}")
    colour = c2.selectbox("You play", ["black", "white"], key="go_colour")
    komi = float(
        c3.number_input("Komi", value=float(engine.runner.komi), step=0.5, key=f"go_komi-{engine.model}")
    )
    if "go_moves" not in ss or ss.get("go_size") != size:
        ss.go_moves, ss.go_size = [], size
    human = BLACK if colour == "black" else WHITE
    board = _board_from_moves(size, komi, ss.go_moves)
    if not board.is_over() and board.to_play != human:
        with st.spinner("Engine thinking ..."):
            answer = engine.analyse(ss.go_moves, size, komi)
        ss.go_moves.append(gtp_to_move(answer.best_move, size))
        board = _board_from_moves(size, komi, ss.go_moves)
    _game_buttons(st, engine, board, human)
    result = engine.analyse(ss.go_moves, size, komi)
    left, right = st.columns([3, 2])
    with left:
        move = _clickable_board(st, engine, result, key=f"go-play-{len(ss.go_moves)}")
        if move is not None and board.to_play == human and not board.is_over():
            _play_human_move(st, board, move)
        st.caption(f"Moves: {len(ss.go_moves)}. Area score now (B-W-komi): {board.score():+g}")
        from .sgf import write_sgf

        st.download_button("Download SGF", write_sgf(ss.go_moves, size, komi), file_name="game.sgf")
    with right:
        _analysis_panel(st, result, board)
        _winrate_chart(st, engine.game_so_far(ss.go_moves, size, komi))


def _game_buttons(st, engine: Engine, board, human: int) -> None:
    """New game, pass, undo (your move and the engine's answer) and "engine move" (the engine
    plays your move); a change reruns the page so the engine answers and the board is redrawn."""
    from .board import gtp_to_move

    ss = st.session_state
    moves = list(ss.go_moves)
    your_turn = board.to_play == human and not board.is_over()
    b1, b2, b3, b4 = st.columns(4)
    if b1.button("New game", key="go_new"):
        moves = []
    if b2.button("Pass", key="go_pass", disabled=not your_turn):
        moves.append(board.pass_move)
    if b3.button("Undo", key="go_undo", disabled=len(moves) < 2 or board.to_play != human):
        moves = moves[:-2]
    if b4.button(
        "Engine move",
        key="go_engine_move",
        disabled=not your_turn,
        help="Let the engine play this move for you",
    ):
        hint = engine.analyse(moves, board.n, board.komi)
        moves.append(gtp_to_move(hint.best_move, board.n))
    if moves != ss.go_moves:
        ss.go_moves = moves
        st.rerun()


def _play_human_move(st, board, move: int) -> None:
    from .board import move_to_gtp

    if not board.is_legal(move):
        st.warning(f"{move_to_gtp(move, board.n)} is not a legal move here (occupied, ko or suicide).")
        return
    st.session_state.go_moves.append(move)
    st.rerun()


def _clickable_board(st, engine: Engine, result, key: str) -> int | None:
    """The board picture; returns the move clicked on it or typed below it (None if neither)."""
    from .board import gtp_to_move

    image = engine.picture(result)
    move = None
    try:
        from streamlit_image_coordinates import streamlit_image_coordinates
    except ImportError:  # the page still works without the component: moves are typed
        st.image(image)
        st.caption("Install streamlit-image-coordinates to play by clicking on the board.")
    else:
        click = streamlit_image_coordinates(image, key=key, cursor="pointer", png_compression_level=1)
        move = click_to_point(click, result.size, engine.cell(result.size))
    typed = st.text_input("Your move (click the board, or type e.g. D4 or pass)", key=f"{key}-typed").strip()
    if typed:
        try:
            move = gtp_to_move(typed, result.size)
        except ValueError as exc:
            st.warning(str(exc))
    return move


def _analysis_panel(st, result, board) -> None:
    st.subheader("Engine's view")
    if board.is_over():
        score = board.score()
        st.info(f"Game over: {'B' if score > 0 else 'W'}+{abs(score):g} (area scoring)")
    st.metric(f"{result.to_play.capitalize()} to play: win probability", f"{result.win_probability:.1%}")
    if st.session_state.get("go_show_ownership") and not result.ownership:
        st.caption("This network has no ownership head, so there is no ownership to show.")
    rows = [
        {
            "move": t["move"],
            "visits": t["visits"],
            "win rate": f"{t['winrate']:.1%}",
            "prior": f"{t['prior']:.1%}",
        }
        for t in result.top_moves
    ]
    st.dataframe(rows, hide_index=True)


def _winrate_chart(st, black_wins: list[float | None]) -> None:
    """Black's win probability after each move (0 = the empty board or the SGF's start)."""
    if len(black_wins) < 2:
        return
    st.caption("Black's win probability over the game")
    percent = [None if p is None else round(100 * p, 1) for p in black_wins]
    st.line_chart({"Black win %": percent}, height=180, x_label="move", y_label="%")


# --- SGF -------------------------------------------------------------------------------------------
def _sgf_text(upload) -> str:
    """An uploaded SGF as text (UTF-8, else Latin-1), read from memory."""
    data = upload.getvalue()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _sgf_tab(st, engine: Engine) -> None:
    from deepapps import InputError

    from .sgf import parse_sgf

    up = st.file_uploader("SGF file", type=["sgf"], key="go_sgf_file")
    pasted = st.text_area("... or paste SGF", value="", height=80, key="go_sgf_text")
    data = _sgf_text(up) if up is not None else pasted
    if not data.strip():
        st.caption("Upload or paste a game to step through it with the engine's analysis.")
        return
    try:
        game = parse_sgf(data)
    except InputError as exc:
        st.error(f"Cannot read this SGF: {exc}")
        return
    total = len(game.moves)
    ply = st.slider("Move", 0, total, total, key="go_sgf_ply") if total else 0
    info = game.properties
    st.caption(
        f"{game.size}x{game.size}, komi {game.komi:g}; {info.get('PB', '?')} (B) vs {info.get('PW', '?')} (W); "
        f"result {info.get('RE', '?')}"
    )
    result = engine.analyse_sgf(data, ply)
    left, right = st.columns([3, 2])
    with left:
        st.image(engine.picture(result))
    with right:
        _analysis_panel(st, result, game.board_at(ply))
        # the graph over the whole game: the value network on every position, in batches (no search)
        _winrate_chart(st, engine.game_curve(data, game))
