"""Plan a run: fix the cutoff, split the table into segments, record, fan out.

The ledger items are written before any message is sent, so a worker always
finds its segment. A sweep whose previous run is still running is not started
again.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from scavenger.config import MAX_SEGMENTS, Sweep
from scavenger.expiry import format_instant
from scavenger.ledger import Ledger, RunRecord
from scavenger.message import SegmentMessage
from scavenger.observability import logger
from scavenger.queue import SegmentQueue, SendFailed
from scavenger.retry import NoDeadline, RetryPolicy

# Each segment's expected work should fit comfortably in one worker invocation:
# about 10,000 deletes at ~5 ms each is under a minute of a 5-minute function.
ITEMS_PER_SEGMENT = 10_000
BYTES_PER_SEGMENT = 256 * 1024 * 1024


@dataclass(frozen=True)
class PlanResult:
    sweep: str
    started: bool
    run_id: str | None = None
    segments: int = 0
    cutoff: str | None = None
    dry_run: bool = False
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def auto_segments(item_count: int, size_bytes: int) -> int:
    by_items = math.ceil(item_count / ITEMS_PER_SEGMENT)
    by_bytes = math.ceil(size_bytes / BYTES_PER_SEGMENT)
    return min(MAX_SEGMENTS, max(1, by_items, by_bytes))


def new_run_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


class Planner:
    def __init__(
        self,
        *,
        ledger: Ledger,
        queue: SegmentQueue,
        dynamodb: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry: RetryPolicy | None = None,
    ):
        self.ledger = ledger
        self.queue = queue
        self.dynamodb = dynamodb
        self.clock = clock
        self.retry = retry or RetryPolicy(NoDeadline())

    def plan(self, sweep: Sweep, *, dry_run: bool = False) -> PlanResult:
        dry_run = dry_run or sweep.dry_run
        previous = self.ledger.latest_run_id(sweep.name)
        if previous is not None:
            running = self.ledger.get_run(previous)
            if running is not None and running.status == "running":
                reason = (
                    f"run {previous} is still running "
                    f"({running.segments_done}/{running.total_segments} segments done)"
                )
                logger.warning("sweep not started", extra={"sweep": sweep.name, "reason": reason})
                return PlanResult(sweep=sweep.name, started=False, run_id=previous, reason=reason)
        total = self._segments(sweep)
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        cutoff = now - sweep.max_age
        run_id = new_run_id(now)
        if not self.ledger.point_sweep_at(sweep.name, run_id, previous):
            reason = "another planner started a run of this sweep at the same time"
            logger.warning("sweep not started", extra={"sweep": sweep.name, "reason": reason})
            return PlanResult(sweep=sweep.name, started=False, reason=reason)
        self.ledger.create_run(
            RunRecord(
                run_id=run_id,
                sweep=sweep.name,
                table=sweep.table,
                total_segments=total,
                cutoff=format_instant(cutoff),
                dry_run=dry_run,
                created_at=format_instant(now),
            )
        )
        messages = [
            SegmentMessage(
                run_id=run_id,
                sweep=sweep.name,
                table=sweep.table,
                segment=segment,
                total_segments=total,
                cutoff=cutoff,
                dry_run=dry_run,
            )
            for segment in range(total)
        ]
        try:
            self.queue.send_all(messages)
        except SendFailed as exc:
            # The run exists and blocks the next one: make the unsent segments visible
            # as failed, so `scavenger status` shows them and `requeue` sends them.
            for segment in exc.segments:
                self.ledger.record_failure(run_id, segment, f"planner could not send: {exc.reason}")
            raise SendFailed(
                exc.segments,
                f"{exc.reason}; run {run_id} has them marked failed: "
                f"`scavenger requeue {run_id} --segment N` sends them",
            ) from exc
        logger.info(
            "run started",
            extra={"sweep": sweep.name, "run_id": run_id, "segments": total, "dry_run": dry_run},
        )
        return PlanResult(
            sweep=sweep.name,
            started=True,
            run_id=run_id,
            segments=total,
            cutoff=format_instant(cutoff),
            dry_run=dry_run,
        )

    def _segments(self, sweep: Sweep) -> int:
        """Explicit segments are honoured; "auto" sizes them from DescribeTable."""
        table = self.retry.call(
            lambda: self.dynamodb.describe_table(TableName=sweep.table), "DescribeTable"
        )["Table"]
        if sweep.segments != "auto":
            return sweep.segments
        return auto_segments(int(table.get("ItemCount", 0)), int(table.get("TableSizeBytes", 0)))


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: one named sweep, or every configured sweep (the schedule)."""

    sweep: str | None = None
    dry_run: bool = False

    @classmethod
    def from_event(cls, event: Any) -> PlanRequest:
        if not isinstance(event, dict):
            raise ValueError("planner event must be a JSON object")
        if event.get("source") == "aws.events" or "detail-type" in event:
            return cls()
        unknown = sorted(set(event) - {"sweep", "dry_run"})
        if unknown:
            raise ValueError(f"planner event: unknown key {unknown[0]!r} (expected sweep, dry_run)")
        sweep = event.get("sweep")
        dry_run = event.get("dry_run", False)
        if sweep is not None and (not isinstance(sweep, str) or not sweep):
            raise ValueError("planner event: sweep must be a sweep name")
        if not isinstance(dry_run, bool):
            raise ValueError("planner event: dry_run must be true or false")
        return cls(sweep=sweep, dry_run=dry_run)
