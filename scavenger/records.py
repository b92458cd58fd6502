"""Plain records of a run and its segments: what the ledger stores, the worker counts
and the operator reads. They parse DynamoDB items and know no client.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from scavenger.message import Key, cursor_from_json

SEGMENT_PREFIX = "SEG#"
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Counts:
    scanned: int = 0
    expired: int = 0
    deleted: int = 0
    skipped: int = 0
    unparseable: int = 0
    throttled: int = 0
    # What the work cost: capacity units DynamoDB reported for Scan and DeleteItem,
    # ledger checkpoints (one per page, or part of a page cut short), segment messages
    # that finished or continued, and the time spent on them.
    read_units: float = 0.0
    write_units: float = 0.0
    pages: int = 0
    messages: int = 0
    worker_ms: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Counts:
        values: dict[str, int | float] = {}
        for counter in fields(cls):
            raw = item.get(counter.name, {}).get("N", "0")
            values[counter.name] = float(raw) if counter.type == "float" else int(Decimal(raw))
        return cls(**values)  # type: ignore[arg-type]


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

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["done_segments"] = data.pop("segments_done")  # the key it always had: a count
        data["totals"] = self.totals.as_dict() if self.totals else None
        return data


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}
