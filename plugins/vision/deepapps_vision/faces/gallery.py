"""Gallery: a persistent face database on SQLite (WAL) with exact 1:N search.

Tables: ``identities`` (a name per person) and ``embeddings`` (one row per enrolled face: the
embedder's name, the vector as float32 bytes, the SHA-256 of the source bytes and the source
path). Every write is one ``BEGIN IMMEDIATE`` transaction, so two processes enrolling at once
serialise their writes (no lost rows), a ``UNIQUE(identity, model, sha256, source)`` key makes a
repeated enrolment a no-op (no duplicated rows), and a process killed mid-enrolment leaves every
committed face complete and nothing half-written (SQLite's atomic commit).

Search is exact: the gallery's vectors are held as one numpy matrix (reloaded only when another
write bumped the gallery's generation counter) and every query is compared to every row.

>>> g = Gallery()                                  # $DEEPAPPS_HOME/faces/gallery.db
>>> g.enroll("ada", ["ada1.jpg", "ada2.jpg"])
>>> g.enroll_folder("people/")                     # people/<name>/*.jpg, incremental by file hash
>>> g.search("unknown.jpg", k=3)                   # [Match(name, distance, same), ...]
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepapps import InputError
from deepapps.runtime.images import IMAGE_SUFFIXES

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    box TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    UNIQUE (identity_id, model, sha256, source)
);
CREATE INDEX IF NOT EXISTS embeddings_source ON embeddings (source);
CREATE INDEX IF NOT EXISTS embeddings_model ON embeddings (model, identity_id);
"""


def default_path() -> Path:
    """``$DEEPAPPS_HOME/faces/gallery.db`` (nothing is created until a gallery is)."""
    from deepapps.runtime.home import home

    return home() / "faces" / "gallery.db"


def gallery_path(path: str | os.PathLike | None = None) -> Path:
    """The database file a gallery argument names: a ``.db`` file, or ``gallery.db`` inside a folder
    (an existing one, or a name without a suffix); ``None`` is :func:`default_path`. No side effects."""
    if not path:
        return default_path()
    p = Path(path).expanduser()
    if p.is_dir() or (not p.suffix and not p.exists()):
        return p / "gallery.db"
    return p


def missing_gallery_error(path: Path) -> InputError:
    return InputError(
        f"no face gallery at {path}; create one with `deepapps faces enroll NAME PHOTO --gallery {path}` "
        "(or check the path)"
    )


@dataclass
class Match:
    """One gallery identity near a query face."""

    name: str
    distance: float
    same: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distance": round(float(self.distance), 4), "same": self.same}


@dataclass
class Identity:
    name: str
    embeddings: int
    created: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EnrollReport:
    """What an enrolment changed: counts, and the files where no face was found."""

    added: int = 0
    unchanged: int = 0
    replaced: int = 0
    removed: int = 0
    no_face: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # source -> why it could not be read
    identities: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sha256_of(image: Any) -> tuple[str, str]:
    """(sha256, source) of an enrolment input: file bytes for paths, pixel bytes otherwise."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise InputError(f"image {path}: file not found")
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest(), str(path.resolve())
    if isinstance(image, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(image)).hexdigest(), ""
    arr = np.asarray(image)
    h = hashlib.sha256(str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest(), ""


class Gallery:
    """A named-face database in one SQLite file; see the module docstring.

    ``path``: a ``.db`` file or a folder (``gallery.db`` inside); default
    ``$DEEPAPPS_HOME/faces/gallery.db``. ``recognizer``: the :class:`FaceRecognizer` used to embed
    images (built with defaults on first use). Embeddings are stored per embedder name, and a
    search only compares vectors of the recognizer's embedder. ``create=False`` opens only an
    existing gallery (a mistyped path is an error instead of a new, empty gallery).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        recognizer: Any = None,
        timeout: float = 60.0,
        create: bool = True,
    ):
        p = gallery_path(path)
        if not create and not p.is_file():
            raise missing_gallery_error(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.path = p
        self.create = create
        self.timeout = timeout
        self._recognizer = recognizer
        self._conn = self._connect()
        self._cache: dict[str, Any] = {}

    # connection ------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            mode = "rwc" if self.create else "rw"  # "rw" never creates the file
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode={mode}",
                uri=True,
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?), ('generation', '0')",
                    (str(SCHEMA_VERSION),),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise InputError(f"face gallery {self.path}: not a usable SQLite database ({exc})") from exc
        return conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _write(self):
        """A context manager for one IMMEDIATE write transaction that bumps the generation."""
        gallery = self

        class _Tx:
            def __enter__(self_inner):
                gallery._conn.execute("BEGIN IMMEDIATE")
                return gallery._conn

            def __exit__(self_inner, exc_type, exc, tb):
                if exc_type is None:
                    gallery._conn.execute(
                        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
                    )
                    gallery._conn.execute("COMMIT")
                else:
                    gallery._conn.execute("ROLLBACK")
                return False

        return _Tx()

    @property
    def recognizer(self):
        """The recognizer that embeds images for this gallery (the task's default model when unset)."""
        if self._recognizer is None:
            from .recognizer import FaceRecognizer

            self._recognizer = FaceRecognizer()
        return self._recognizer

    @recognizer.setter
    def recognizer(self, value: Any) -> None:
        self._recognizer = value

    @property
    def model(self) -> str:
        return self.recognizer.model_name

    # writing -----------------------------------------------------------------------
    def add_embedding(
        self,
        name: str,
        vector: np.ndarray,
        sha256: str,
        source: str = "",
        model: str | None = None,
        box: Iterable[int] = (),
        replace_source: bool = False,
    ) -> bool:
        """Store one embedding for ``name`` in its own transaction; False if it was already there."""
        return self.add_embeddings([(name, vector, sha256, source, list(box))], model, replace_source) > 0

    def add_embeddings(
        self,
        rows: list[tuple[str, np.ndarray, str, str, list[int]]],
        model: str | None = None,
        replace_source: bool = False,
    ) -> int:
        """Store ``(name, vector, sha256, source, box)`` rows in one transaction; returns rows added."""
        model = model or self.model
        added = 0
        with self._write() as c:
            for name, vector, sha, source, box in rows:
                name = check_name(name)
                vec = np.asarray(vector, dtype=np.float32).reshape(-1)
                if not np.all(np.isfinite(vec)):
                    raise InputError(f"embedding for {name!r} holds NaN or inf")
                c.execute(
                    "INSERT OR IGNORE INTO identities (name, created) VALUES (?, ?)", (name, time.time())
                )
                (ident,) = c.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
                if replace_source and source:
                    c.execute(
                        "DELETE FROM embeddings WHERE source = ? AND model = ? AND sha256 != ?",
                        (source, model, sha),
                    )
                cur = c.execute(
                    "INSERT OR IGNORE INTO embeddings (identity_id, model, dim, vector, sha256, source, box, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        ident,
                        model,
                        vec.size,
                        vec.tobytes(),
                        sha,
                        source,
                        ",".join(map(str, box)),
                        time.time(),
                    ),
                )
                added += cur.rowcount
            if replace_source:
                c.execute(
                    "DELETE FROM identities WHERE id NOT IN (SELECT DISTINCT identity_id FROM embeddings)"
                )
        return added

    def _embed_one(self, image: Any):
        faces = self.recognizer.embed(image)
        return faces[0] if faces else None

    def enroll(self, name: str, images: Any, progress: bool = False) -> EnrollReport:
        """Add the largest face of each image (path, bytes, PIL or array) to ``name``.

        Images already enrolled for ``name`` (same bytes, same source) are skipped without
        embedding them again; images without a face are listed in ``report.no_face``, and images
        that cannot be read in ``report.failed`` (the others are still enrolled).
        """
        t0 = time.perf_counter()
        name = check_name(name)
        single = isinstance(images, (str, os.PathLike, bytes)) or hasattr(images, "getpixel")
        if single or (isinstance(images, np.ndarray) and images.ndim in (2, 3) and images.dtype != object):
            images = [images]
        report = EnrollReport(identities=[name])
        known = self._known(name)
        for i, image in enumerate(_maybe_bar(list(images), progress, f"enroll {name}")):
            label = str(image) if isinstance(image, (str, os.PathLike)) else f"#{i}"
            try:
                sha, source = _sha256_of(image)
                if (sha, source) in known:
                    report.unchanged += 1
                    continue
                face = self._embed_one(str(image) if isinstance(image, os.PathLike) else image)
            except InputError as exc:
                report.failed[label] = str(exc)
                continue
            if face is None:
                report.no_face.append(source or label)
                continue
            added = self.add_embedding(name, face.embedding, sha, source, box=face.box)
            report.added += int(added)
            report.unchanged += int(not added)
        report.seconds = round(time.perf_counter() - t0, 3)
        return report

    def _known(self, name: str) -> set[tuple[str, str]]:
        rows = self._conn.execute(
            "SELECT e.sha256, e.source FROM embeddings e JOIN identities i ON i.id = e.identity_id "
            "WHERE i.name = ? AND e.model = ?",
            (name, self.model),
        ).fetchall()
        return {(r[0], r[1]) for r in rows}

    def enroll_folder(
        self, root: str | os.PathLike, prune: bool = True, progress: bool = True
    ) -> EnrollReport:
        """Sync ``root/<name>/*.jpg`` into the gallery: embed only new or changed files (by SHA-256),
        and with ``prune`` drop the faces of files that were removed (and identities left empty).

        Each face is committed on its own, so an interrupted run keeps what it finished and the
        next run picks up the rest.
        """
        t0 = time.perf_counter()
        root = Path(root).expanduser()
        if not root.is_dir():
            raise InputError(f"{root}: not a folder; expected people/<name>/*.jpg")
        model = self.model
        wanted = _people_files(root)
        stored = self._stored_under(root, model)
        report = EnrollReport(identities=sorted({n for n, _ in wanted.values()}))
        if prune:
            report.removed += self._delete_sources([src for src in stored if src not in wanted], model)
        for source, (name, path) in _maybe_bar(list(wanted.items()), progress, f"enroll {root.name}"):
            try:
                self._sync_file(source, name, path, stored.get(source), model, report)
            except InputError as exc:
                report.failed[source] = str(exc)
        report.seconds = round(time.perf_counter() - t0, 3)
        return report

    def _stored_under(self, root: Path, model: str) -> dict[str, tuple[str, str]]:
        """source -> (sha256, name) of the faces enrolled from files under ``root``."""
        rows = self._conn.execute(
            "SELECT e.source, e.sha256, i.name FROM embeddings e JOIN identities i ON i.id = e.identity_id "
            "WHERE e.model = ? AND e.source LIKE ? ESCAPE '\\'",
            (model, _like_prefix(str(root.resolve()) + os.sep)),
        )
        return {src: (sha, name) for src, sha, name in rows}

    def _delete_sources(self, sources: list[str], model: str) -> int:
        """Drop the faces of these source files (and identities left empty); returns faces removed."""
        if not sources:
            return 0
        removed = 0
        with self._write() as c:
            for src in sources:
                removed += c.execute(
                    "DELETE FROM embeddings WHERE source = ? AND model = ?", (src, model)
                ).rowcount
            c.execute("DELETE FROM identities WHERE id NOT IN (SELECT DISTINCT identity_id FROM embeddings)")
        return removed

    def _sync_file(
        self, source: str, name: str, path: Path, previous: tuple[str, str] | None, model: str,
        report: EnrollReport,
    ) -> None:  # fmt: skip
        """Bring one file of a people folder up to date (``previous``: its stored (sha256, name))."""
        sha, _ = _sha256_of(path)
        if previous == (sha, name):
            report.unchanged += 1
            return
        face = self._embed_one(path)
        if face is None:
            report.no_face.append(source)
            if previous is not None:  # the file changed into one without a face
                report.removed += self._delete_sources([source], model)
            return
        if previous is not None and previous[1] != name:
            with self._write() as c:  # moved to another person's folder
                c.execute("DELETE FROM embeddings WHERE source = ? AND model = ?", (source, model))
        self.add_embedding(name, face.embedding, sha, source, model=model, box=face.box, replace_source=True)
        if previous is None:
            report.added += 1
        else:
            report.replaced += 1

    def remove(self, name: str) -> int:
        """Delete ``name`` and all its faces; returns how many faces were removed (0: unknown name)."""
        with self._write() as c:
            row = c.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                return 0
            n = c.execute("DELETE FROM embeddings WHERE identity_id = ?", (row[0],)).rowcount
            c.execute("DELETE FROM identities WHERE id = ?", (row[0],))
        return n

    # reading -----------------------------------------------------------------------
    def list(self) -> list[Identity]:
        """Every identity with its number of stored faces (all embedders), by name."""
        rows = self._conn.execute(
            "SELECT i.name, COUNT(e.id), i.created FROM identities i LEFT JOIN embeddings e ON e.identity_id = i.id "
            "GROUP BY i.id ORDER BY i.name"
        ).fetchall()
        return [Identity(n, int(c), float(t)) for n, c, t in rows]

    def names(self) -> list[str]:
        return [i.name for i in self.list()]

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM identities").fetchone()[0]

    def count_embeddings(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]

    def generation(self) -> int:
        return int(self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def check(self) -> list[str]:
        """Consistency problems (empty list when healthy): SQLite integrity, orphans, bad vectors."""
        problems = []
        (ok,) = self._conn.execute("PRAGMA integrity_check").fetchone()
        if ok != "ok":
            problems.append(f"integrity_check: {ok}")
        orphans = self._conn.execute(
            "SELECT COUNT(*) FROM embeddings WHERE identity_id NOT IN (SELECT id FROM identities)"
        ).fetchone()[0]
        if orphans:
            problems.append(f"{orphans} embeddings without an identity")
        bad = self._conn.execute(
            "SELECT COUNT(*) FROM embeddings WHERE length(vector) != dim * 4"
        ).fetchone()[0]
        if bad:
            problems.append(f"{bad} embeddings with a truncated vector")
        empty = self._conn.execute(
            "SELECT COUNT(*) FROM identities WHERE id NOT IN (SELECT DISTINCT identity_id FROM embeddings)"
        ).fetchone()[0]
        if empty:
            problems.append(f"{empty} identities without any face")
        return problems

    def matrix(self, model: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(vectors (n, d) float32, identity index per row (n,), names)``; cached per generation."""
        model = model or self.model
        gen = self.generation()
        cached = self._cache.get(model)
        if cached is not None and cached[0] == gen:
            return cached[1]
        rows = self._conn.execute(
            "SELECT i.name, e.vector FROM embeddings e JOIN identities i ON i.id = e.identity_id "
            "WHERE e.model = ? ORDER BY e.identity_id, e.id",
            (model,),
        ).fetchall()
        names: list[str] = []
        index = np.empty(len(rows), dtype=np.int64)
        vecs = []
        for r, (name, blob) in enumerate(rows):
            if not names or names[-1] != name:
                names.append(name)
            index[r] = len(names) - 1
            vecs.append(np.frombuffer(blob, dtype=np.float32))
        mat = np.vstack(vecs).astype(np.float32) if vecs else np.zeros((0, 0), np.float32)
        value = (mat, index, names)
        # rows are grouped by identity, so a per-identity minimum is one reduceat over group starts
        starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]]) if len(index) else index
        self._cache[model] = (gen, value, (mat * mat).sum(1), starts)
        return value

    def search_embedding(
        self,
        vector: np.ndarray,
        k: int = 5,
        model: str | None = None,
        metric: str | None = None,
        threshold: float | None = None,
    ) -> list[Match]:
        """The ``k`` nearest identities to ``vector`` (exact; an identity's distance is its closest face)."""
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        model = model or self.model
        mat, index, names = self.matrix(model)
        if len(mat) == 0:
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.size != mat.shape[1]:
            raise InputError(
                f"query has {q.size} dimensions, the gallery's {model} vectors have {mat.shape[1]}"
            )
        if metric is None or threshold is None:
            emb = self.recognizer.embedder
            metric = metric or emb.metric
            threshold = emb.threshold if threshold is None else threshold
        # einsum, not BLAS: one thread, so a search never waits for BLAS workers on a busy CPU
        dots = np.einsum("ij,j->i", mat, q)
        if metric == "cosine":
            norms = np.linalg.norm(mat, axis=1) * (np.linalg.norm(q) + 1e-12) + 1e-12
            dist = 1.0 - dots / norms
        else:
            sq = self._cache[model][2]
            d2 = sq + float(q @ q) - 2.0 * dots
            dist = np.sqrt(np.maximum(d2, 0.0))
        starts = self._cache[model][3]
        best = dist if len(starts) == len(dist) else np.minimum.reduceat(dist, starts)
        k = min(k, len(names))
        top = np.argpartition(best, k - 1)[:k] if k < len(names) else np.arange(len(names))
        top = top[np.argsort(best[top], kind="stable")]
        return [Match(names[i], float(best[i]), bool(best[i] < threshold)) for i in top]

    def search(self, image: Any, k: int = 5) -> list[Match]:
        """The ``k`` gallery identities nearest to the largest face in ``image`` ([] when no face)."""
        face = self._embed_one(image)
        if face is None:
            return []
        return self.search_embedding(face.embedding, k)

    def identify(self, faces: list, threshold: float | None = None, top_k: int = 1) -> list:
        """Set ``identity`` (None when nobody is under the threshold), ``distance`` and the ``top_k``
        nearest ``matches`` on embedded faces."""
        thr = self.recognizer.threshold if threshold is None else threshold
        for f in faces:
            if f.embedding is None:
                continue
            matches = self.search_embedding(f.embedding, top_k, threshold=thr)
            if matches:
                f.matches = matches
                f.distance = matches[0].distance
                f.identity = matches[0].name if matches[0].same else None
        return faces


def check_name(name: str) -> str:
    """The stripped identity name; InputError when it is empty, too long or holds a slash."""
    name = str(name).strip()
    if not name or "/" in name or "\\" in name or len(name) > 200:
        raise InputError(f"identity name {name!r} must be 1-200 characters without slashes")
    return name


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _people_files(root: Path) -> dict[str, tuple[str, Path]]:
    """source (resolved path) -> (person, path) for every image in ``root/<person>/``."""
    wanted: dict[str, tuple[str, Path]] = {}
    for person in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(person.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                wanted[str(f.resolve())] = (person.name, f)
    return wanted


def _maybe_bar(items: list, progress: bool, desc: str):
    if not progress:
        return items
    from deepapps.runtime.progress import progress as bar

    return bar(items, desc=desc, unit="img")
