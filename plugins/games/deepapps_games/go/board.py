"""A fast pure-Python Go board for tree search.

Rules (the ones pettingzoo's ``go_v5`` implements, so both boards agree move for move):

- suicide is illegal (a move that leaves its own group without liberties and captures nothing);
- **simple ko**: a move that captures exactly one stone, played on a point whose neighbours were all
  enemy stones, forbids the immediate recapture at the captured point for one move; a pass clears it.
  Positional superko is *not* enforced (pettingzoo's comment claims it, its code does not); long
  cycles are cut instead by a move cap (``max_moves``, default ``3 * N * N``) after which the game
  is scored as it stands;
- the game ends after two consecutive passes;
- Chinese **area scoring** without dead-stone removal (Tromp-Taylor): stones plus empty regions that
  touch only one colour, minus komi. A positive score is a black win; a zero score (integer komi)
  counts as a white win, as in pettingzoo.

Points are flat indices ``row * N + col`` with row 0 at the top, exactly pettingzoo's action
numbering; the pass is ``N * N``. Colours: ``BLACK = 1``, ``WHITE = -1``, ``EMPTY = 0``.
"""

from __future__ import annotations

import math
from functools import cache

from deepapps.errors import InputError

BLACK, WHITE, EMPTY = 1, -1, 0
GTP_COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
MIN_SIZE, MAX_SIZE = 2, 25
MAX_KOMI = float(MAX_SIZE * MAX_SIZE)  # no game, even on the largest board, is won by more points


def check_komi(value: object, where: str = "komi") -> float:
    """``value`` as a komi: a finite number no larger in size than :data:`MAX_KOMI` (else InputError).

    A NaN komi would make every score comparison false (no winner at all); an infinite or huge one
    decides every game before it starts.
    """
    try:
        komi = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{where} must be a number like 7.5, got {value!r}") from exc
    if not math.isfinite(komi) or abs(komi) > MAX_KOMI:
        raise InputError(f"{where} must be a finite number from -{MAX_KOMI:g} to {MAX_KOMI:g}, got {value!r}")
    return komi


class IllegalMoveError(ValueError):
    """A move that the rules forbid (occupied, ko, suicide) or that is off the board."""


@cache
def neighbours(n: int) -> tuple[tuple[int, ...], ...]:
    """For each point of an ``n``×``n`` board, the flat indices of its orthogonal neighbours."""
    out = []
    for p in range(n * n):
        r, c = divmod(p, n)
        nb = []
        if r > 0:
            nb.append(p - n)
        if r < n - 1:
            nb.append(p + n)
        if c > 0:
            nb.append(p - 1)
        if c < n - 1:
            nb.append(p + 1)
        out.append(tuple(nb))
    return tuple(out)


class Board:
    """A Go position with the side to move, the ko point and a short history (for network features).

    ``play`` mutates; ``copy`` is cheap (a list copy). Use :meth:`legal_mask` for all legal moves at once.
    """

    __slots__ = ("n", "stones", "to_play", "ko", "passes", "moves", "history", "komi", "max_moves", "nb")

    HISTORY = 3  # previous positions kept for features

    def __init__(self, n: int = 9, komi: float = 7.5, max_moves: int | None = None) -> None:
        if not isinstance(n, int) or not MIN_SIZE <= n <= MAX_SIZE:
            raise ValueError(f"board size must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {n!r}")
        self.n = n
        self.stones: list[int] = [EMPTY] * (n * n)
        self.to_play = BLACK
        self.ko = -1
        self.passes = 0
        self.moves = 0
        self.history: tuple[tuple[int, ...], ...] = ()
        self.komi = check_komi(komi)
        self.max_moves = max_moves if max_moves is not None else 3 * n * n
        self.nb = neighbours(n)

    # basics -------------------------------------------------------------------
    @property
    def pass_move(self) -> int:
        return self.n * self.n

    def copy(self) -> Board:
        b = Board.__new__(Board)
        b.n = self.n
        b.stones = self.stones[:]
        b.to_play = self.to_play
        b.ko = self.ko
        b.passes = self.passes
        b.moves = self.moves
        b.history = self.history
        b.komi = self.komi
        b.max_moves = self.max_moves
        b.nb = self.nb
        return b

    def is_over(self) -> bool:
        """Two passes in a row, or the move cap reached."""
        return self.passes >= 2 or self.moves >= self.max_moves

    # groups -------------------------------------------------------------------
    def _group(self, p: int) -> tuple[list[int], set[int]]:
        """Stones of the group at ``p`` and its liberties."""
        s, nb = self.stones, self.nb
        color = s[p]
        group = [p]
        seen = {p}
        libs: set[int] = set()
        i = 0
        while i < len(group):
            q = group[i]
            i += 1
            for r in nb[q]:
                v = s[r]
                if v == EMPTY:
                    libs.add(r)
                elif v == color and r not in seen:
                    seen.add(r)
                    group.append(r)
        return group, libs

    def _has_liberty(self, p: int) -> bool:
        s, nb = self.stones, self.nb
        color = s[p]
        stack = [p]
        seen = {p}
        while stack:
            q = stack.pop()
            for r in nb[q]:
                v = s[r]
                if v == EMPTY:
                    return True
                if v == color and r not in seen:
                    seen.add(r)
                    stack.append(r)
        return False

    # moves --------------------------------------------------------------------
    def is_legal(self, move: int) -> bool:
        n2 = self.n * self.n
        if move == n2:
            return True
        if not 0 <= move < n2 or self.stones[move] != EMPTY or move == self.ko:
            return False
        s, color = self.stones, self.to_play
        for r in self.nb[move]:
            if s[r] == EMPTY:
                return True
        # every neighbour is a stone: legal iff it captures or joins a group with another liberty
        for r in self.nb[move]:
            _, libs = self._group(r)
            if s[r] == color:
                if len(libs) > 1:
                    return True
            elif len(libs) == 1:
                return True
        return False

    def _surrounded_legal(self, p: int, libs_of: dict[int, int]) -> bool:
        """Legality of the empty point ``p`` whose neighbours are all stones: it must capture or join
        one of its own groups that keeps another liberty (``libs_of`` caches group liberty counts)."""
        s, color = self.stones, self.to_play
        for r in self.nb[p]:
            nl = libs_of.get(r)
            if nl is None:
                group, libs = self._group(r)
                nl = len(libs)
                for q in group:
                    libs_of[q] = nl
            if (s[r] == color and nl > 1) or (s[r] != color and nl == 1):
                return True
        return False

    def legal_mask(self) -> list[bool]:
        """Legal flag for every point and (last) the pass, like pettingzoo's action mask."""
        n2 = self.n * self.n
        s, nb = self.stones, self.nb
        mask = [False] * (n2 + 1)
        mask[n2] = True
        libs_of: dict[int, int] = {}  # point -> liberty count of its group, filled lazily
        for p in range(n2):
            if s[p] != EMPTY or p == self.ko:
                continue
            ok = False
            for r in nb[p]:
                if s[r] == EMPTY:
                    ok = True
                    break
            mask[p] = ok or self._surrounded_legal(p, libs_of)
        return mask

    def is_eye(self, p: int, color: int) -> bool:
        """``p`` is an empty point enclosed by ``color`` that filling would only hurt (an eye-like point).

        All orthogonal neighbours are ``color``; at most one diagonal is an enemy stone (none on the
        edge). A search heuristic used by Go programs for decades (GNU Go, Pachi playouts).
        """
        s, n = self.stones, self.n
        if s[p] != EMPTY:
            return False
        for r in self.nb[p]:
            if s[r] != color:
                return False
        row, col = divmod(p, n)
        bad = 0
        diag = 0
        for dr in (-1, 1):
            for dc in (-1, 1):
                rr, cc = row + dr, col + dc
                if 0 <= rr < n and 0 <= cc < n:
                    diag += 1
                    if s[rr * n + cc] == -color:
                        bad += 1
        return bad == 0 if diag < 4 else bad <= 1

    def candidate_moves(self) -> list[int]:
        """Moves worth searching: legal moves minus filling our own eyes; pass only when the opponent
        just passed (so a won game can end) or nothing else is left. Every candidate is legal.

        Called once per new search leaf, so it is written for speed: an empty point with an empty
        neighbour is legal and cannot be an eye; only points surrounded by stones take the slow path.
        """
        s, nb, color, ko = self.stones, self.nb, self.to_play, self.ko
        out = []
        libs_of: dict[int, int] | None = None
        for p in [i for i, v in enumerate(s) if v == EMPTY]:
            if p == ko:
                continue
            own = True
            for r in nb[p]:
                v = s[r]
                if v == EMPTY:
                    break
                if v != color:
                    own = False
            else:  # every neighbour is a stone
                if libs_of is None:
                    libs_of = {}
                if not self._surrounded_legal(p, libs_of) or (own and self.is_eye(p, color)):
                    continue
            out.append(p)
        if self.passes > 0 or not out:
            out.append(self.n * self.n)
        return out

    def legal_moves(self) -> list[int]:
        return [i for i, ok in enumerate(self.legal_mask()) if ok]

    def play(self, move: int) -> list[int]:
        """Play ``move`` for the side to move (mutating); returns the captured points.

        Raises :class:`IllegalMoveError` for an occupied point, the ko point, suicide or off-board.
        """
        n2 = self.n * self.n
        self.history = (tuple(self.stones),) + self.history[: self.HISTORY - 1]
        if move == n2:
            self.passes += 1
            self.ko = -1
            self.to_play = -self.to_play
            self.moves += 1
            return []
        if not 0 <= move < n2:
            self.history = self.history[1:]
            raise IllegalMoveError(f"move {move} is off the board (0..{n2 - 1}, pass = {n2})")
        s, nb = self.stones, self.nb
        if s[move] != EMPTY:
            self.history = self.history[1:]
            raise IllegalMoveError(f"{self.point_name(move)} is occupied")
        if move == self.ko:
            self.history = self.history[1:]
            raise IllegalMoveError(f"{self.point_name(move)} retakes a ko; play elsewhere first")
        color = self.to_play
        opp = -color
        koish = all(s[r] == opp for r in nb[move])
        s[move] = color
        captured: list[int] = []
        for r in nb[move]:
            if s[r] == opp and not self._has_liberty(r):
                group, _ = self._group(r)
                for q in group:
                    s[q] = EMPTY
                captured.extend(group)
        if not captured and not self._has_liberty(move):
            s[move] = EMPTY
            self.history = self.history[1:]
            raise IllegalMoveError(f"{self.point_name(move)} is suicide")
        self.ko = captured[0] if (len(captured) == 1 and koish) else -1
        self.passes = 0
        self.to_play = opp
        self.moves += 1
        return captured

    # scoring ------------------------------------------------------------------
    def area(self) -> list[int]:
        """Owner of every point under area scoring: 1 black, -1 white, 0 dame/neutral."""
        s, nb = self.stones, self.nb
        owner = s[:]
        seen = [False] * len(s)
        for p in range(len(s)):
            if s[p] != EMPTY or seen[p]:
                continue
            region = [p]
            seen[p] = True
            borders = set()
            i = 0
            while i < len(region):
                q = region[i]
                i += 1
                for r in nb[q]:
                    v = s[r]
                    if v == EMPTY:
                        if not seen[r]:
                            seen[r] = True
                            region.append(r)
                    else:
                        borders.add(v)
            color = borders.pop() if len(borders) == 1 else EMPTY
            for q in region:
                owner[q] = color
        return owner

    def score(self) -> float:
        """Black's area minus white's area minus komi (positive: black leads)."""
        owner = self.area()
        return owner.count(BLACK) - owner.count(WHITE) - self.komi

    def winner(self) -> int:
        """BLACK or WHITE under :meth:`score` (a zero score is a white win, as in pettingzoo)."""
        return BLACK if self.score() > 0 else WHITE

    # names --------------------------------------------------------------------
    def point_name(self, move: int) -> str:
        return move_to_gtp(move, self.n)

    def __str__(self) -> str:
        n = self.n
        cols = "   " + " ".join(GTP_COLUMNS[:n])
        rows = [cols]
        for r in range(n):
            cells = []
            for c in range(n):
                v = self.stones[r * n + c]
                cells.append("X" if v == BLACK else "O" if v == WHITE else ".")
            rows.append(f"{n - r:>2} " + " ".join(cells) + f" {n - r}")
        rows.append(cols)
        return "\n".join(rows)


def move_to_gtp(move: int, n: int) -> str:
    """Flat index -> GTP vertex (``A1`` bottom-left, no ``I``); the pass is ``pass``."""
    if move == n * n:
        return "pass"
    r, c = divmod(move, n)
    return f"{GTP_COLUMNS[c]}{n - r}"


def gtp_to_move(text: str, n: int) -> int:
    """GTP vertex -> flat index; raises ValueError for anything that is not a point of this board."""
    t = text.strip().upper()
    if t == "PASS":
        return n * n
    if len(t) < 2 or t[0] not in GTP_COLUMNS[:n] or not (t[1:].isascii() and t[1:].isdigit()):
        raise ValueError(f"invalid vertex {text!r} for a {n}x{n} board (expected e.g. C3 or pass)")
    col = GTP_COLUMNS.index(t[0])
    row_from_bottom = int(t[1:])
    if not 1 <= row_from_bottom <= n:
        raise ValueError(f"invalid vertex {text!r}: row must be 1..{n}")
    return (n - row_from_bottom) * n + col
