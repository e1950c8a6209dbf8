"""Order and command messages: parsed strictly, rejected with a reason a plant engineer can act on.

An order is a JSON object ``{"order_id": "WMS-000001", "parts": ["duck", "mug"]}``: the parts the
upstream will put on the belt, to be sorted into their class bins. Anything else (bad JSON, a
missing or odd id, an unknown part class, unknown fields) is a :class:`Rejected` with its reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

MAX_PAYLOAD = 16_384  # bytes
MAX_PARTS = 50
ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
ORDER_FIELDS = {"order_id", "parts", "note"}
COMMANDS = ("start", "stop", "reset")


class Rejected(ValueError):
    """A message the cell refuses; ``reason`` says why, ``order_id`` names it when it could be read."""

    def __init__(self, reason: str, order_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.order_id = order_id


@dataclass(frozen=True)
class Order:
    order_id: str
    parts: tuple[str, ...]
    note: str = ""

    def canonical(self) -> str:
        """The order's content as stable JSON (what a duplicate must match)."""
        return json.dumps(
            {"order_id": self.order_id, "parts": list(self.parts), "note": self.note},
            sort_keys=True,
            separators=(",", ":"),
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]


def _json_object(payload: bytes | str) -> dict[str, Any]:
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > MAX_PAYLOAD:
        raise Rejected(f"message of {len(raw)} bytes is over the {MAX_PAYLOAD}-byte limit")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Rejected(f"expected a JSON object, got {type(data).__name__}")
    return data


def parse_order(payload: bytes | str, classes: tuple[str, ...]) -> Order:
    """A checked :class:`Order`, or :class:`Rejected` with what was wrong."""
    data = _json_object(payload)
    oid = data.get("order_id")
    named = oid if isinstance(oid, str) and ORDER_ID.match(oid) else None
    if not isinstance(oid, str) or not ORDER_ID.match(oid):
        raise Rejected(
            "order_id must be 1-64 characters of letters, digits and . _ : - (starting with a "
            f"letter or digit); got {oid!r}"
        )
    unknown = sorted(set(data) - ORDER_FIELDS)
    if unknown:
        raise Rejected(
            f"unknown field(s) {', '.join(unknown)}; an order has order_id, parts and an optional note", named
        )
    parts = data.get("parts")
    if not isinstance(parts, list) or not parts or len(parts) > MAX_PARTS:
        raise Rejected(f"parts must be a list of 1-{MAX_PARTS} part classes", named)
    bad = sorted({str(p) for p in parts if not isinstance(p, str) or p not in classes})
    if bad:
        raise Rejected(
            f"unknown part class(es) {', '.join(bad)}; this cell sorts {', '.join(classes)}", named
        )
    note = data.get("note", "")
    if not isinstance(note, str) or len(note) > 200:
        raise Rejected("note must be text of at most 200 characters", named)
    return Order(oid, tuple(parts), note)


def parse_command(payload: bytes | str) -> str:
    """``{"command": "start"|"stop"|"reset"}`` -> the command."""
    data = _json_object(payload)
    cmd = data.get("command")
    if cmd not in COMMANDS:
        raise Rejected(f"command must be one of {', '.join(COMMANDS)}; got {cmd!r}")
    return str(cmd)
