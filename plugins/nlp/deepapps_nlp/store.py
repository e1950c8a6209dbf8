"""Conversations persisted in SQLite under ``DEEPAPPS_HOME/chat/conversations.sqlite``.

Two tables: ``conversations`` (id, title, model, preset, created, updated) and ``messages``
(conversation, position, role, content, created, meta JSON). A connection per call keeps it
safe across threads (the server, the UI) and processes (WAL journal). Every write is one
``BEGIN IMMEDIATE`` transaction, so a message's position is read and used under the write
lock: two writers never pick the same position, and an exchange (user + assistant turn) is
saved whole or not at all.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepapps import InputError

ID_PREFIX = re.compile(r"[0-9a-f]{1,32}")  # ids are uuid4 hex (12 characters)

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    model TEXT,
    preset TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    conversation TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created REAL NOT NULL,
    meta TEXT,
    PRIMARY KEY (conversation, position)
);
"""


@dataclass
class Conversation:
    id: str
    title: str
    model: str | None
    preset: str | None
    created: float
    updated: float
    messages: list[dict[str, Any]] = field(default_factory=list)
    n_messages: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "model": self.model,
            "preset": self.preset,
            "created": self.created,
            "updated": self.updated,
            "n_messages": self.n_messages or len(self.messages),
            "messages": self.messages,
        }

    def chat_messages(self) -> list[dict[str, str]]:
        """The messages as ``{role, content}`` pairs, ready for :meth:`Chat.stream_reply`."""
        return [{"role": m["role"], "content": m["content"]} for m in self.messages]


class ConversationStore:
    """List, create, resume (``get``), append to and delete conversations."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            from deepapps.runtime import home

            path = home() / "chat" / "conversations.sqlite"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
        with self._write() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (each statement on its own)."""
        db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from its first statement."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def create(
        self, title: str = "New conversation", model: str | None = None, preset: str | None = None
    ) -> str:
        cid = uuid.uuid4().hex[:12]
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                (cid, title[:200], model, preset, now, now),
            )
        return cid

    def resolve(self, cid: str) -> str:
        """The full id for ``cid`` or a unique prefix of it (hex characters only: ``%`` or
        ``_`` are not wildcards here)."""
        with self._connect() as db:
            return _resolve(db, cid)

    def add(self, cid: str, role: str, content: str, **meta: Any) -> None:
        """Append one message to conversation ``cid``."""
        self.add_turns(cid, [{"role": role, "content": content, "meta": meta}])

    def add_turns(self, cid: str, turns: list[dict[str, Any]]) -> None:
        """Append messages (``{"role", "content", "meta"?}``) in one transaction: all or none."""
        now = time.time()
        with self._write() as db:
            cid = _resolve(db, cid)
            (pos,) = db.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE conversation = ?", (cid,)
            ).fetchone()
            for offset, turn in enumerate(turns):
                meta = turn.get("meta")
                db.execute(
                    "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        cid,
                        pos + offset,
                        turn["role"],
                        turn["content"],
                        now,
                        json.dumps(meta) if meta else None,
                    ),
                )
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, cid))

    def rename(self, cid: str, title: str) -> None:
        with self._write() as db:
            cid = _resolve(db, cid)
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title[:200], cid))

    def get(self, cid: str) -> Conversation:
        """A conversation with all its messages (to resume it)."""
        with self._connect() as db:
            db.execute("BEGIN")  # one snapshot: the row and its messages agree
            cid = _resolve(db, cid)
            row = db.execute("SELECT * FROM conversations WHERE id = ?", (cid,)).fetchone()
            msgs = db.execute(
                "SELECT role, content, created, meta FROM messages WHERE conversation = ? ORDER BY position",
                (cid,),
            ).fetchall()
            db.execute("COMMIT")
        messages = [
            {
                "role": m["role"],
                "content": m["content"],
                "created": m["created"],
                **json.loads(m["meta"] or "{}"),
            }
            for m in msgs
        ]
        return Conversation(**dict(row), messages=messages, n_messages=len(messages))

    def list(self, limit: int | None = None) -> list[Conversation]:
        """Conversations, most recently updated first, without their messages."""
        sql = (
            "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation = c.id) AS n_messages "
            "FROM conversations c ORDER BY updated DESC"
        )
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as db:
            rows = db.execute(sql).fetchall()
        return [Conversation(**dict(r)) for r in rows]

    def delete(self, cid: str) -> None:
        with self._write() as db:
            cid = _resolve(db, cid)
            db.execute("DELETE FROM messages WHERE conversation = ?", (cid,))
            db.execute("DELETE FROM conversations WHERE id = ?", (cid,))


def _resolve(db: sqlite3.Connection, cid: str) -> str:
    prefix = cid.strip().lower() if isinstance(cid, str) else ""
    if not ID_PREFIX.fullmatch(prefix):
        raise InputError(
            f"{cid!r} is not a conversation id: ids are hexadecimal, like 3f2a9c01b7de; "
            "see `deepapps chat list`"
        )
    rows = db.execute(
        "SELECT id FROM conversations WHERE substr(id, 1, ?) = ?", (len(prefix), prefix)
    ).fetchall()
    if len(rows) == 1:
        return rows[0]["id"]
    if not rows:
        raise InputError(f"no conversation {cid!r}; see `deepapps chat list`")
    raise InputError(f"conversation id {cid!r} is ambiguous ({len(rows)} match); give more characters")
