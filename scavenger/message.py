"""The segment message: the SQS body both the planner and the workers speak."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from scavenger.config import MAX_SEGMENTS, NAME_PATTERN, TABLE_PATTERN, key_name, shown
from scavenger.errors import InvalidMessage
from scavenger.expiry import format_instant, parse_instant

VERSION = 1
FIELDS = frozenset(
    {"v", "run_id", "sweep", "table", "segment", "total_segments", "cutoff", "cursor", "hop"}
    | {"dry_run"}
)
# Optional: this message's share of the fleet-wide write budget (write units per second)
# and the rate the worker had paced down to, carried into its continuation.
OPTIONAL_FIELDS = frozenset({"wcu", "wcu_rate"})
MAX_WRITE_UNITS = 10_000_000
Key = dict[str, dict[str, Any]]  # a DynamoDB key in low-level JSON (B values are bytes)
# Planner run ids are short ("20261123T020000Z-3f9c"); a ledger key is at most 1 KB.
MAX_RUN_ID_LENGTH = 128


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
    wcu: float | None = None
    wcu_rate: float | None = None

    @property
    def group_id(self) -> str:
        """One group per segment: never two workers on it, continuations in order."""
        return f"{self.sweep}#{self.segment}"

    def deduplication_id(self, nonce: str | None = None) -> str:
        parts = [self.run_id, str(self.segment), str(self.hop)]
        if nonce:
            parts.append(nonce)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def continuation(self, cursor: Key | None, wcu_rate: float | None = None) -> SegmentMessage:
        """The next hop from ``cursor``; ``wcu_rate`` is where the pacer stood (None: keep)."""
        rate = self.wcu_rate if wcu_rate is None else wcu_rate
        return replace(self, cursor=cursor, hop=self.hop + 1, wcu_rate=rate)

    def to_json(self) -> str:
        optional = {name: getattr(self, name) for name in sorted(OPTIONAL_FIELDS)}
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
                **{name: value for name, value in optional.items() if value is not None},
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, body: str) -> SegmentMessage:
        """Parse and validate a body; anything else raises InvalidMessage (poison)."""
        try:
            data = json.loads(body)
        except (ValueError, TypeError) as exc:  # JSONDecodeError, or an int too long
            raise InvalidMessage(f"body is not JSON: {exc}") from None
        except RecursionError:
            raise InvalidMessage("body is JSON nested too deeply") from None
        if not isinstance(data, dict):
            raise InvalidMessage("body is not a JSON object")
        if not FIELDS <= set(data) <= FIELDS | OPTIONAL_FIELDS:
            missing = sorted(FIELDS - set(data))
            extra = [shown(name) for name in sorted(set(data) - FIELDS - OPTIONAL_FIELDS)[:5]]
            raise InvalidMessage(f"fields do not match: missing {missing}, unexpected {extra}")
        if type(data["v"]) is not int or data["v"] != VERSION:
            raise InvalidMessage(f"v: unsupported version {shown(data['v'])}")
        for name in ("run_id", "sweep", "table", "cutoff"):
            if not isinstance(data[name], str) or not data[name]:
                raise InvalidMessage(f"{name}: must be a non-empty string")
        if len(data["run_id"]) > MAX_RUN_ID_LENGTH:
            raise InvalidMessage(f"run_id: longer than {MAX_RUN_ID_LENGTH} characters")
        if not NAME_PATTERN.fullmatch(data["sweep"]):
            raise InvalidMessage(f"sweep: {shown(data['sweep'])} is not a sweep name")
        if not TABLE_PATTERN.fullmatch(data["table"]):
            raise InvalidMessage(f"table: {shown(data['table'])} is not a table name")
        total = _integer(data, "total_segments", 1, MAX_SEGMENTS)
        segment = _integer(data, "segment", 0, total - 1)
        hop = _integer(data, "hop", 0, 10**9)
        if not isinstance(data["dry_run"], bool):
            raise InvalidMessage("dry_run: must be true or false")
        try:
            cutoff = parse_instant(data["cutoff"]).astimezone(UTC)
        except (ValueError, OverflowError):
            raise InvalidMessage(f"cutoff: {shown(data['cutoff'])} is not ISO-8601") from None
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
            wcu=_units(data, "wcu"),
            wcu_rate=_units(data, "wcu_rate"),
        )


def _units(data: dict[str, Any], name: str) -> float | None:
    """An optional write-units rate: absent or null is None, else a number > 0."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMessage(f"{name}: {shown(value)} must be a number")
    if not 0 < value <= MAX_WRITE_UNITS:  # NaN and infinities fail this too
        raise InvalidMessage(f"{name}: {shown(value)} must be in (0, {MAX_WRITE_UNITS}]")
    return float(value)


def _integer(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidMessage(f"{name}: {shown(value)} must be an integer in {low}..{high}")
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
    if len(data) > 2:
        raise InvalidMessage("cursor: a key has at most two attributes")
    cursor: Key = {}
    for name, value in data.items():
        where = f"cursor.{key_name(name)}"
        if not name:
            raise InvalidMessage("cursor: attribute names must not be empty")
        if not isinstance(value, dict) or len(value) != 1:
            raise InvalidMessage(f"{where}: must be one typed value like {{'S': ...}}")
        ((kind, raw),) = value.items()
        if kind not in ("S", "N", "B") or not isinstance(raw, str) or not raw:
            raise InvalidMessage(f"{where}: must be a non-empty S, N or B value")
        if kind == "B":
            try:
                cursor[name] = {"B": base64.b64decode(raw, validate=True)}
            except ValueError:
                raise InvalidMessage(f"{where}: B value is not base64") from None
        elif kind == "N" and not _is_number(raw):
            raise InvalidMessage(f"{where}: N value {shown(raw)} is not a number")
        else:
            cursor[name] = {kind: raw}
    return cursor


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


PLAN_SHARD_KIND = "plan_shard"
SHARD_FIELDS = frozenset(
    {"v", "kind", "run_id", "sweep", "table", "total_segments", "cutoff", "dry_run"}
    | {"first", "count"}
)
SHARD_OPTIONAL_FIELDS = frozenset({"wcu"})  # each segment message's share of the budget


@dataclass(frozen=True)
class PlanShardMessage:
    """A share of a large run's fan-out: write the ledger items of segments
    ``first .. first + count - 1`` and send their segment messages.

    The planner of a run past its shard threshold sends these instead of one message
    per segment, so its own work does not grow with the table. They travel on the
    segment queue in a group of their own; a worker plans them (scavenger.plan.plan_shard).
    """

    run_id: str
    sweep: str
    table: str
    total_segments: int
    cutoff: datetime
    dry_run: bool
    first: int
    count: int
    wcu: float | None = None

    @property
    def segment(self) -> int:
        """The first segment: what a failed send names (SegmentQueue.send_all)."""
        return self.first

    @property
    def group_id(self) -> str:
        return f"{self.sweep}#plan-{self.first}"

    def deduplication_id(self, nonce: str | None = None) -> str:
        parts = [self.run_id, PLAN_SHARD_KIND, str(self.first)]
        if nonce:
            parts.append(nonce)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def segments(self) -> range:
        return range(self.first, self.first + self.count)

    def segment_message(self, segment: int) -> SegmentMessage:
        return SegmentMessage(**run_fields(self), segment=segment, wcu=self.wcu)

    def to_json(self) -> str:
        share = {} if self.wcu is None else {"wcu": self.wcu}
        return json.dumps(
            {
                "v": VERSION,
                "kind": PLAN_SHARD_KIND,
                "run_id": self.run_id,
                "sweep": self.sweep,
                "table": self.table,
                "total_segments": self.total_segments,
                "cutoff": format_instant(self.cutoff),
                "dry_run": self.dry_run,
                "first": self.first,
                "count": self.count,
                **share,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse_if_shard(cls, body: str) -> PlanShardMessage | None:
        """The shard message in ``body``; None if the body does not claim to be one (it
        is then parsed as a segment message); InvalidMessage if it claims so wrongly."""
        if f'"{PLAN_SHARD_KIND}"' not in body:
            return None
        try:
            data = json.loads(body)
        except (ValueError, TypeError, RecursionError):
            return None
        if not isinstance(data, dict) or data.get("kind") != PLAN_SHARD_KIND:
            return None
        if not SHARD_FIELDS <= set(data) <= SHARD_FIELDS | SHARD_OPTIONAL_FIELDS:
            missing = sorted(SHARD_FIELDS - set(data))
            unexpected = set(data) - SHARD_FIELDS - SHARD_OPTIONAL_FIELDS
            extra = [shown(name) for name in sorted(unexpected)[:5]]
            raise InvalidMessage(f"fields do not match: missing {missing}, unexpected {extra}")
        base = SegmentMessage.parse(
            json.dumps(
                {name: data[name] for name in FIELDS - {"segment", "cursor", "hop"}}
                | {"segment": 0, "cursor": None, "hop": 0}
            )
        )
        first = _integer(data, "first", 0, base.total_segments - 1)
        count = _integer(data, "count", 1, base.total_segments - first)
        return cls(**run_fields(base), first=first, count=count, wcu=_units(data, "wcu"))


Outgoing = SegmentMessage | PlanShardMessage  # what the planner puts on the segment queue
# What a segment message and a plan shard share: the run, what it sweeps, and how.
RUN_FIELDS = ("run_id", "sweep", "table", "total_segments", "cutoff", "dry_run")


def run_fields(message: Outgoing) -> dict[str, Any]:
    """The RUN_FIELDS of ``message``, to build the other kind of message of its run."""
    return {name: getattr(message, name) for name in RUN_FIELDS}
