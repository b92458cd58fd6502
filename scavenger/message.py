"""The segment message: the SQS body both the planner and the workers speak."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from scavenger.config import MAX_SEGMENTS
from scavenger.errors import InvalidMessage
from scavenger.expiry import format_instant, parse_instant

VERSION = 1
FIELDS = frozenset(
    {"v", "run_id", "sweep", "table", "segment", "total_segments", "cutoff", "cursor", "hop"}
    | {"dry_run"}
)
Key = dict[str, dict[str, Any]]  # a DynamoDB key in low-level JSON (B values are bytes)


@dataclass(frozen=True)
class SegmentMessage:
    run_id: str
    sweep: str
    table: str
    segment: int
    total_segments: int
    cutoff: datetime
    cursor: Key | None = None
    hop: int = 0
    dry_run: bool = False

    @property
    def group_id(self) -> str:
        """One group per segment: never two workers on it, continuations in order."""
        return f"{self.sweep}#{self.segment}"

    def deduplication_id(self, nonce: str | None = None) -> str:
        parts = [self.run_id, str(self.segment), str(self.hop)]
        if nonce:
            parts.append(nonce)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def continuation(self, cursor: Key | None) -> SegmentMessage:
        return replace(self, cursor=cursor, hop=self.hop + 1)

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": VERSION,
                "run_id": self.run_id,
                "sweep": self.sweep,
                "table": self.table,
                "segment": self.segment,
                "total_segments": self.total_segments,
                "cutoff": format_instant(self.cutoff),
                "cursor": cursor_to_json(self.cursor),
                "hop": self.hop,
                "dry_run": self.dry_run,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, body: str) -> SegmentMessage:
        """Parse and validate a body; anything else raises InvalidMessage (poison)."""
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, TypeError) as exc:
            raise InvalidMessage(f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidMessage("body is not a JSON object")
        if set(data) != FIELDS:
            missing = sorted(FIELDS - set(data))
            extra = sorted(set(data) - FIELDS)
            raise InvalidMessage(f"fields do not match: missing {missing}, unexpected {extra}")
        if data["v"] != VERSION:
            raise InvalidMessage(f"v: unsupported version {data['v']!r}")
        for name in ("run_id", "sweep", "table", "cutoff"):
            if not isinstance(data[name], str) or not data[name]:
                raise InvalidMessage(f"{name}: must be a non-empty string")
        total = _integer(data, "total_segments", 1, MAX_SEGMENTS)
        segment = _integer(data, "segment", 0, total - 1)
        hop = _integer(data, "hop", 0, 10**9)
        if not isinstance(data["dry_run"], bool):
            raise InvalidMessage("dry_run: must be true or false")
        try:
            cutoff = parse_instant(data["cutoff"])
        except ValueError:
            raise InvalidMessage(f"cutoff: {data['cutoff']!r} is not ISO-8601") from None
        return cls(
            run_id=data["run_id"],
            sweep=data["sweep"],
            table=data["table"],
            segment=segment,
            total_segments=total,
            cutoff=cutoff,
            cursor=cursor_from_json(data["cursor"]),
            hop=hop,
            dry_run=data["dry_run"],
        )


def _integer(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidMessage(f"{name}: {value!r} must be an integer in {low}..{high}")
    return value


def cursor_to_json(cursor: Key | None) -> dict[str, dict[str, str]] | None:
    """A scan key as DynamoDB JSON text values (binary as base64, like the AWS CLI)."""
    if cursor is None:
        return None
    encoded: dict[str, dict[str, str]] = {}
    for name, value in cursor.items():
        ((kind, raw),) = value.items()
        encoded[name] = {kind: base64.b64encode(raw).decode() if kind == "B" else raw}
    return encoded


def cursor_from_json(data: object) -> Key | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not data:
        raise InvalidMessage("cursor: must be null or a DynamoDB key object")
    cursor: Key = {}
    for name, value in data.items():
        if not isinstance(value, dict) or len(value) != 1:
            raise InvalidMessage(f"cursor.{name}: must be one typed value like {{'S': ...}}")
        ((kind, raw),) = value.items()
        if kind not in ("S", "N", "B") or not isinstance(raw, str):
            raise InvalidMessage(f"cursor.{name}: {kind!r} is not a key type (S, N, B)")
        if kind == "B":
            try:
                cursor[name] = {"B": base64.b64decode(raw, validate=True)}
            except ValueError:
                raise InvalidMessage(f"cursor.{name}: B value is not base64") from None
        else:
            cursor[name] = {kind: raw}
    return cursor
