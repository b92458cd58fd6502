"""Plain records of a run and its segments: what the ledger stores, the worker counts
and the operator reads. They parse DynamoDB items and know no client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

from scavenger.expiry import parse_instant
from scavenger.message import RUN_FIELDS, Key, cursor_from_json

SEGMENT_PREFIX = "SEG#"
MAX_ERROR_LENGTH = 500
# A ledger attribute per secondary index holding the write units its deletes consumed
# ("write_units#ByStatus"): top-level, as UpdateItem's ADD takes no nested path.
INDEX_UNITS_PREFIX = "write_units#"


def index_units_attribute(index: str) -> str:
    return f"{INDEX_UNITS_PREFIX}{index}"


@dataclass(frozen=True)
class Counts:
    scanned: int = 0
    expired: int = 0
    deleted: int = 0
    skipped: int = 0
    unparseable: int = 0
    throttled: int = 0
    # What the work cost: capacity units DynamoDB reported for Scan and the deletes,
    # ledger checkpoints (one per page, or part of a page cut short), segment messages
    # that finished or continued, and the time spent on them. ``write_units`` is the
    # whole (table and indexes, what the write budget paces); ``write_units_by_index``
    # the part each secondary index took, where the engine reports it.
    read_units: float = 0.0
    write_units: float = 0.0
    pages: int = 0
    messages: int = 0
    worker_ms: int = 0
    write_units_by_index: Mapping[str, float] = field(default_factory=dict, hash=False)

    @property
    def table_write_units(self) -> float:
        """The write units the table itself took: the whole less its indexes' part."""
        return self.write_units - sum(self.write_units_by_index.values())

    def __add__(self, other: Counts) -> Counts:
        by_index = dict(self.write_units_by_index)
        for index, units in other.write_units_by_index.items():
            by_index[index] = by_index.get(index, 0.0) + units
        return Counts(
            **{name: getattr(self, name) + getattr(other, name) for name in COUNTERS},
            write_units_by_index=by_index,
        )

    def as_dict(self) -> dict[str, int | float]:
        """The scalar counters (the ledger's ADD, the metrics), without the indexes."""
        return {name: getattr(self, name) for name in COUNTERS}

    def to_json(self) -> dict[str, Any]:
        """The scalar counters, the table's write units and each index's."""
        return self.as_dict() | {
            "table_write_units": self.table_write_units,
            "write_units_by_index": dict(sorted(self.write_units_by_index.items())),
        }

    def item_values(self) -> dict[str, int | float]:
        """What the ledger stores: one attribute per counter and per index."""
        by_index = self.write_units_by_index.items()
        return self.as_dict() | {index_units_attribute(name): units for name, units in by_index}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Counts:
        values: dict[str, Any] = {}
        for counter in fields(cls):
            if counter.name in COUNTERS:
                raw = item.get(counter.name, {}).get("N", "0")
                values[counter.name] = float(raw) if counter.type == "float" else int(Decimal(raw))
        values["write_units_by_index"] = {
            name.removeprefix(INDEX_UNITS_PREFIX): float(value["N"])
            for name, value in item.items()
            if name.startswith(INDEX_UNITS_PREFIX)
        }
        return cls(**values)


COUNTERS = tuple(f.name for f in fields(Counts) if f.name != "write_units_by_index")


@dataclass(frozen=True)
class SegmentState:
    run_id: str
    segment: int
    status: str
    hop: int
    cursor: Key | None
    checkpoints: int
    counts: Counts
    updated_at: str | None = None
    last_error: str | None = None
    first_error: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SegmentState:
        return cls(
            run_id=item["run_id"]["S"],
            segment=int(item["part"]["S"].removeprefix(SEGMENT_PREFIX)),
            status=item["status"]["S"],
            hop=int(item["hop"]["N"]),
            cursor=cursor_from_json(json.loads(item["cursor"]["S"])),
            checkpoints=int(item["checkpoints"]["N"]),
            counts=Counts.from_item(item),
            updated_at=item.get("updated_at", {}).get("S"),
            last_error=item.get("last_error", {}).get("S"),
            first_error=item.get("first_error", {}).get("S"),
        )

    def drops(self, hop: int) -> bool:
        """Whether a worker drops a message of ``hop`` for this segment: the segment is
        done, or has moved on to a later hop (so redriving that message does nothing)."""
        return self.status == "done" or hop < self.hop


@dataclass(frozen=True)
class Halt:
    """Why a run is halted: the first systemic error a worker met on the swept table."""

    call: str
    resource: str
    code: str
    message: str
    segment: int
    at: str

    def describe(self) -> str:
        return f"{self.code} on {self.call} of {self.resource}: {self.message}"

    def to_item(self) -> dict[str, Any]:
        return {
            "M": {
                "call": _s(self.call),
                "resource": _s(self.resource),
                "code": _s(self.code),
                "message": _s(self.message[:MAX_ERROR_LENGTH] or "error"),
                "segment": _n(self.segment),
                "at": _s(self.at),
            }
        }

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Halt | None:
        if item is None:
            return None
        fields_ = item["M"]
        return cls(
            call=fields_["call"]["S"],
            resource=fields_["resource"]["S"],
            code=fields_["code"]["S"],
            message=fields_["message"]["S"],
            segment=int(fields_["segment"]["N"]),
            at=fields_["at"]["S"],
        )


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    sweep: str
    table: str
    total_segments: int
    cutoff: str
    dry_run: bool
    created_at: str
    status: str = "running"
    # How many segments are done: counted with each segment's own move to done, in
    # one transaction (Ledger.checkpoint), so it never grows the run item.
    segments_done: int = 0
    totals: Counts | None = None
    finished_at: str | None = None
    # While halted: the first systemic error. Once resumed, it is kept as last_halt.
    halt: Halt | None = None
    last_halt: Halt | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RunRecord:
        totals = item.get("totals", {}).get("M")
        return cls(
            run_id=item["run_id"]["S"],
            sweep=item["sweep"]["S"],
            table=item["table"]["S"],
            total_segments=int(item["total_segments"]["N"]),
            cutoff=item["cutoff"]["S"],
            dry_run=item["dry_run"]["BOOL"],
            created_at=item["created_at"]["S"],
            status=item["status"]["S"],
            segments_done=int(item.get("segments_done", {}).get("N", "0")),
            totals=Counts.from_item(totals) if totals is not None else None,
            finished_at=item.get("finished_at", {}).get("S"),
            halt=Halt.from_item(item.get("halt")),
            last_halt=Halt.from_item(item.get("last_halt")),
        )

    def identity(self) -> dict[str, Any]:
        """What names a run and where it stands, as status and run reports show it."""
        return {
            "run_id": self.run_id,
            "sweep": self.sweep,
            "table": self.table,
            "status": self.status,
            "dry_run": self.dry_run,
            "started": self.created_at,
            "finished": self.finished_at,
            "cutoff": self.cutoff,
        }

    def message_fields(self) -> dict[str, Any]:
        """What each message of this run carries (message.RUN_FIELDS), to build one."""
        carried = {name: getattr(self, name) for name in RUN_FIELDS}
        return carried | {"cutoff": parse_instant(self.cutoff)}

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["done_segments"] = data.pop("segments_done")  # the key it always had: a count
        data["totals"] = self.totals.to_json() if self.totals else None
        return data


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}
