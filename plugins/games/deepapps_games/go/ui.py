"""Streamlit page: play Go against the engine on a clickable board, or step through an SGF with analysis."""

from __future__ import annotations

from typing import Any

STONE = {1: "⚫", -1: "⚪", 0: "·"}


def _engine(model: str, visits: int):
    import streamlit as st

    @st.cache_resource(show_spinner="Loading the Go network ...")
    def _load(model_name: str):
        from .net import Evaluator
        from .runner import load_model, model_defaults

        net, meta = load_model(model_name)
        return Evaluator(net), model_defaults(meta)

    ev, defaults = _load(model)
    from .selfplay import MCTSPlayer

    return MCTSPlayer(ev, visits=visits, batch=8), defaults


def _board_from_moves(size: int, komi: float, moves: list[int]):
    from .board import Board

    b = Board(size, komi=komi, max_moves=10 * size * size)
    for m in moves:
        b.play(m)
    return b


def _analysis_panel(st, player, board, visits: int) -> dict[str, Any]:
    from .board import BLACK

    if board.is_over():
        st.info(f"Game over: {'B' if board.score() > 0 else 'W'}+{abs(board.score()):g} (area scoring)")
        return {}
    res = player.analyse(board, visits=visits)
    side = "Black" if board.to_play == BLACK else "White"
    st.metric(f"{side} to play: win probability", f"{(res.value + 1) / 2:.1%}")
    top = res.top(5)
    st.table(
        [
            {
                "move": t["move"],
                "visits": t["visits"],
                "win rate": f"{t['winrate']:.1%}",
                "prior": f"{t['prior']:.1%}",
            }
            for t in top
        ]
    )
    return {"top": top, "value": res.value}


def _grid(st, board, key: str, clickable: bool, highlight: set[int]) -> int | None:
    """A grid of buttons; returns the clicked point (or None)."""
    from .board import GTP_COLUMNS

    n = board.n
    legal = set(board.legal_moves()) if clickable else set()
    clicked = None
    header = st.columns(n + 1)
    for c in range(n):
        header[c + 1].markdown(
            f"<div style='text-align:center'>{GTP_COLUMNS[c]}</div>", unsafe_allow_html=True
        )
    for r in range(n):
        cols = st.columns(n + 1)
        cols[0].markdown(f"**{n - r}**")
        for c in range(n):
            p = r * n + c
            label = STONE[board.stones[p]]
            if p in highlight and board.stones[p] == 0:
                label = "✳"
            if cols[c + 1].button(
                label, key=f"{key}-{p}", disabled=not (clickable and p in legal), use_container_width=True
            ):
                clicked = p
    return clicked


def render() -> None:
    """The Go page: 'Play' (you vs the engine) and 'Analyse SGF' (step through a game)."""
    import streamlit as st

    from .board import BLACK, gtp_to_move
    from .sgf import read_sgf, write_sgf

    st.title("Go: AlphaZero-style engine")
    st.caption(
        "Policy-value network + PUCT search. Each model is trained for one board size (its default "
        "below); other sizes work, but play weakly."
    )
    from deepapps.registry import registry

    names = [m.name for m in registry.models(task="go")] or ["go-7x7"]
    choice = st.sidebar.selectbox(
        "Model",
        [*names, "other (path)"],
        index=names.index("go-7x7") if "go-7x7" in names else 0,
        key="go_model",
    )
    model = st.sidebar.text_input("Model file (.safetensors)") if choice == "other (path)" else choice
    if not model:
        st.info("Enter the path of a Go network (.safetensors) or pick a registered model.")
        return
    visits = st.sidebar.slider("Strength (search visits per move)", 8, 800, 100, step=8)
    tab_play, tab_sgf = st.tabs(["Play", "Analyse SGF"])
    from deepapps.errors import DeepAppsError

    try:
        player, (default_size, default_komi) = _engine(model, visits)
    except DeepAppsError as exc:
        st.error(f"Cannot load this Go model: {exc}")
        return

    with tab_play:
        ss = st.session_state
        c1, c2, c3 = st.columns(3)
        size = c1.selectbox(
            "Board size", [5, 7, 9], index=[5, 7, 9].index(default_size) if default_size in (5, 7, 9) else 1
        )
        colour = c2.selectbox("You play", ["black", "white"])
        komi = c3.number_input("Komi", value=float(default_komi), step=0.5)
        if "go_moves" not in ss or ss.get("go_size") != size or st.button("New game"):
            ss.go_moves, ss.go_size = [], size
        board = _board_from_moves(size, komi, ss.go_moves)
        human = BLACK if colour == "black" else -BLACK
        if not board.is_over() and board.to_play != human:
            with st.spinner("Engine thinking ..."):
                move = player.genmove(board)
            ss.go_moves.append(move)
            board = _board_from_moves(size, komi, ss.go_moves)
        left, right = st.columns([3, 2])
        with left:
            clicked = _grid(
                st, board, "play", clickable=not board.is_over() and board.to_play == human, highlight=set()
            )
            b1, b2 = st.columns(2)
            if b1.button("Pass", disabled=board.is_over()):
                clicked = board.pass_move
            if b2.button("Undo", disabled=len(ss.go_moves) < 2):
                ss.go_moves = ss.go_moves[:-2]
                st.rerun()
            if clicked is not None:
                ss.go_moves.append(clicked)
                st.rerun()
            st.caption(f"Moves: {len(ss.go_moves)}. Area score now (B-W-komi): {board.score():+g}")
            st.download_button("Download SGF", write_sgf(ss.go_moves, size, komi), file_name="game.sgf")
        with right:
            st.subheader("Engine's view")
            _analysis_panel(st, player, board, visits)

    with tab_sgf:
        up = st.file_uploader("SGF file", type=["sgf"])
        text = st.text_area("... or paste SGF", value="", height=80)
        data = up.getvalue().decode("utf-8", "replace") if up is not None else text
        if data.strip():
            import tempfile

            from deepapps import InputError

            try:
                with tempfile.NamedTemporaryFile("w", suffix=".sgf", delete=False) as fh:
                    fh.write(data)
                game = read_sgf(fh.name)
            except InputError as exc:
                st.error(f"Cannot read this SGF: {exc}")
                return
            ply = st.slider("Move", 0, len(game.moves), len(game.moves))
            board = game.board_at(ply)
            info = game.properties
            st.caption(
                f"{game.size}x{game.size}, komi {game.komi:g}; {info.get('PB', '?')} (B) vs {info.get('PW', '?')} (W); result {info.get('RE', '?')}"
            )
            left, right = st.columns([3, 2])
            with right:
                st.subheader("Analysis")
                res = _analysis_panel(st, player, board, visits)
            with left:
                hl = set()
                for t in res.get("top", [])[:3]:
                    if t["move"] != "pass":
                        hl.add(gtp_to_move(t["move"], board.n))
                _grid(st, board, "sgf", clickable=False, highlight=hl)
