"""Plan a run: fix the cutoff, split the table into segments, record, fan out.

The ledger items are written before any message is sent, so a worker always
finds its segment. A sweep whose previous run is still running is not started
again, nor one whose previous run is halted (its cause must be fixed first).

Past ``shard_threshold`` segments the planner's own work stops growing with the
table: it writes one item per shard of ``shard_segments`` segments (then the run
item) and sends one plan-shard message per shard; a worker receiving one writes
that shard's segment items and sends their messages (``plan_shard``), and marks
the shard planned. Every step is idempotent, so a redelivered shard message
finishes what a crashed one began; a shard whose message never left (the planner
died or could not send) stays pending, and the sweep's next planner invocation
sends it again.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from scavenger.budget import WriteBudget, choose_budget
from scavenger.config import MAX_SEGMENTS, Sweep
from scavenger.errors import ConfigError, FatalError
from scavenger.expiry import Expressions, format_instant, parse_instant
from scavenger.ledger import Ledger
from scavenger.message import Outgoing, PlanShardMessage, SegmentMessage
from scavenger.observability import logger
from scavenger.queue import SegmentQueue, SendFailed
from scavenger.records import RunRecord
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.runtime import Runtime
from scavenger.table import key_attributes

# "auto" aims each segment at SEGMENT_SHARE of a worker's timeout: items per segment
# = items a worker gets through per second x that time. The rate is the sweep's own,
# measured by its last finished run (items scanned per worker-second, from the
# ledger's totals); a sweep's first run assumes DEFAULT_ITEMS_PER_WORKER_SECOND,
# which gives the 10,000-item segments of earlier versions at the default timeout.
SEGMENT_SHARE = 0.5
DEFAULT_WORKER_TIMEOUT_SECONDS = 300
DEFAULT_MAX_CONCURRENCY = 50
ITEMS_PER_SEGMENT = 10_000
DEFAULT_ITEMS_PER_WORKER_SECOND = ITEMS_PER_SEGMENT / (
    SEGMENT_SHARE * DEFAULT_WORKER_TIMEOUT_SECONDS
)
BYTES_PER_SEGMENT = 256 * 1024 * 1024
# A shard plans 1,000 segments: 40 BatchWriteItem, 10 BatchGetItem and 100
# SendMessageBatch calls, a few seconds of a worker. Past 1,000 segments the planner
# fans out in shards: at the 1,000,000-segment maximum it writes and sends 1,000.
SHARD_SEGMENTS = 1_000
SHARD_THRESHOLD = 1_000
# A shard still pending this long after its planner wrote it lost its message (no
# planner invocation lives longer than Lambda's 15 minutes): send it again.
RESEND_SHARDS_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class PlanResult:
    sweep: str
    started: bool
    run_id: str | None = None
    segments: int = 0
    cutoff: str | None = None
    dry_run: bool = False
    reason: str = ""
    write_budget: WriteBudget | None = None
    shards: int = 0
    sizing: dict[str, Any] | None = None  # how "auto" chose the segment count

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["write_budget"] = self.write_budget.to_json() if self.write_budget else None
        return data


@dataclass(frozen=True)
class Fleet:
    """What the planner knows of the workers, from its environment (the stack's
    worker timeout and event source MaximumConcurrency)."""

    worker_timeout_seconds: int = DEFAULT_WORKER_TIMEOUT_SECONDS
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Fleet:
        env = os.environ if env is None else env

        def positive(name: str, default: int) -> int:
            raw = env.get(name, "")
            if not raw:
                return default
            if not raw.isdigit() or int(raw) < 1:
                raise ConfigError(f"{name}: {raw!r} must be a positive integer")
            return int(raw)

        return cls(
            worker_timeout_seconds=positive(
                "SCAVENGER_WORKER_TIMEOUT_SECONDS", DEFAULT_WORKER_TIMEOUT_SECONDS
            ),
            max_concurrency=positive("SCAVENGER_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY),
        )


@dataclass(frozen=True)
class Sizing:
    """The numbers behind an "auto" segment count (shown by ``plan --dry-run``)."""

    item_count: int
    table_bytes: int
    items_per_worker_second: float
    rate_source: str
    worker_timeout_seconds: int
    target_seconds_per_segment: float
    max_concurrency: int
    write_units_per_second: float | None
    items_per_segment: int
    segments: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def size_segments(
    item_count: int,
    table_bytes: int,
    *,
    items_per_worker_second: float = DEFAULT_ITEMS_PER_WORKER_SECOND,
    rate_source: str = "default",
    fleet: Fleet = Fleet(),
    write_units_per_second: float | None = None,
) -> Sizing:
    """Segments that each take about SEGMENT_SHARE of a worker's timeout.

    A write budget shared by MaximumConcurrency workers caps each worker at its share
    (an expired item costs at least one write unit), so a tighter budget makes
    smaller segments. Segments also stay under BYTES_PER_SEGMENT of table.
    """
    rate = items_per_worker_second
    if write_units_per_second:
        rate = min(rate, write_units_per_second / fleet.max_concurrency)
    target = SEGMENT_SHARE * fleet.worker_timeout_seconds
    per_segment = max(1, math.floor(rate * target))
    by_time = math.ceil(item_count / per_segment)
    by_bytes = math.ceil(table_bytes / BYTES_PER_SEGMENT)
    return Sizing(
        item_count=item_count,
        table_bytes=table_bytes,
        items_per_worker_second=round(rate, 3),
        rate_source=rate_source,
        worker_timeout_seconds=fleet.worker_timeout_seconds,
        target_seconds_per_segment=target,
        max_concurrency=fleet.max_concurrency,
        write_units_per_second=write_units_per_second,
        items_per_segment=per_segment,
        segments=min(MAX_SEGMENTS, max(1, by_time, by_bytes)),
    )


def auto_segments(item_count: int, size_bytes: int) -> int:
    """Segments for a table with no measured rate, at the default fleet."""
    return size_segments(item_count, size_bytes).segments


def measured_rate(run: RunRecord | None) -> tuple[float, str] | None:
    """Items scanned per worker-second in a finished real run, from its totals."""
    if run is None or run.status != "done" or run.dry_run or run.totals is None:
        return None
    seconds = run.totals.worker_ms / 1000
    if seconds <= 0 or run.totals.scanned <= 0:
        return None
    return run.totals.scanned / seconds, f"run {run.run_id}"


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
        max_concurrency: int | None = None,
        shard_threshold: int | None = None,
        shard_segments: int | None = None,
        fleet: Fleet | None = None,
    ):
        self.ledger = ledger
        self.queue = queue
        self.dynamodb = dynamodb
        self.clock = clock
        self.retry = retry or RetryPolicy(NoDeadline())
        self.max_concurrency = max_concurrency
        self._description: dict[str, Any] = {}
        self.shard_threshold = SHARD_THRESHOLD if shard_threshold is None else shard_threshold
        self.shard_segments = SHARD_SEGMENTS if shard_segments is None else shard_segments
        self.fleet = fleet or Fleet.from_env()

    def plan(self, sweep: Sweep, *, dry_run: bool = False) -> PlanResult:
        dry_run = dry_run or sweep.dry_run
        previous = self.ledger.latest_run_id(sweep.name)
        running = self.ledger.get_run(previous) if previous is not None else None
        if previous is not None and running is not None and running.status == "halted":
            why = running.halt.describe() if running.halt else "no error recorded"
            reason = (
                f"run {previous} is halted: {why}; "
                f"fix it and `scavenger requeue {previous} --halted`"
            )
            logger.warning("sweep not started", extra={"sweep": sweep.name, "reason": reason})
            return PlanResult(sweep=sweep.name, started=False, run_id=previous, reason=reason)
        if previous is not None and running is not None and running.status == "running":
            reason = (
                f"run {previous} is still running "
                f"({running.segments_done}/{running.total_segments} segments done)"
            )
            resent = self._resend_lost_shards(running)
            if resent:
                reason += f"; sent its {resent} shards whose message was lost again"
            logger.warning("sweep not started", extra={"sweep": sweep.name, "reason": reason})
            return PlanResult(sweep=sweep.name, started=False, run_id=previous, reason=reason)
        # After the ledger's checks: a run halted by a denied table says so, rather
        # than failing here on the same denial.
        self.check_expression(sweep)
        sizing = self._sizing(sweep, running)
        total = sweep.segments if sweep.segments != "auto" else sizing.segments
        budget = choose_budget(sweep.max_write_units_per_second, self._description).shared(
            total, self.max_concurrency
        )
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        cutoff = now - sweep.max_age
        run_id = new_run_id(now)
        if not self.ledger.point_sweep_at(sweep.name, run_id, previous):
            reason = "another planner started a run of this sweep at the same time"
            logger.warning("sweep not started", extra={"sweep": sweep.name, "reason": reason})
            return PlanResult(sweep=sweep.name, started=False, reason=reason)
        run = RunRecord(
            run_id=run_id,
            sweep=sweep.name,
            table=sweep.table,
            total_segments=total,
            cutoff=format_instant(cutoff),
            dry_run=dry_run,
            created_at=format_instant(now),
        )
        shards = self._shards(total)
        self.ledger.planning.create_run(run, shards)
        messages: list[Outgoing] = []
        if shards:
            messages = [shard_message(run, first, count) for first, count in shards]
        else:
            messages = [
                SegmentMessage(
                    run_id=run_id,
                    sweep=sweep.name,
                    table=sweep.table,
                    segment=segment,
                    total_segments=total,
                    cutoff=cutoff,
                    dry_run=dry_run,
                    wcu=budget.per_worker,
                )
                for segment in range(total)
            ]
        try:
            self.queue.send_all(messages)
        except SendFailed as exc:
            if shards:
                # Their shard items stay pending: the sweep's next planner sends them.
                raise SendFailed(
                    exc.segments,
                    f"{exc.reason}; run {run_id} keeps the shards starting at these "
                    "segments pending: the sweep's next `scavenger plan` sends them",
                ) from exc
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
            extra={
                "sweep": sweep.name,
                "run_id": run_id,
                "segments": total,
                "shards": len(shards),
                "dry_run": dry_run,
                "write_budget": budget.to_json(),
            },
        )
        return PlanResult(
            sweep=sweep.name,
            started=True,
            run_id=run_id,
            segments=total,
            cutoff=format_instant(cutoff),
            dry_run=dry_run,
            write_budget=budget,
            shards=len(shards),
            sizing=sizing.to_json() if sweep.segments == "auto" else None,
        )

    def _shards(self, total: int) -> list[tuple[int, int]]:
        """(first segment, count) per shard; none at or below the threshold."""
        if total <= self.shard_threshold:
            return []
        size = self.shard_segments
        return [(first, min(size, total - first)) for first in range(0, total, size)]

    def _resend_lost_shards(self, run: RunRecord) -> int:
        """Send again the shards of ``run`` still pending long after they were written
        (their planner died or failed to send); how many."""
        stale_before = self.clock().astimezone(UTC) - RESEND_SHARDS_AFTER
        lost = [
            (first, count)
            for first, count, updated_at in self.ledger.planning.pending_shards(run.run_id)
            if parse_instant(updated_at) < stale_before
        ]
        if lost:
            self.queue.send_all([shard_message(run, first, count) for first, count in lost])
            logger.warning("shards sent again", extra={"run_id": run.run_id, "shards": len(lost)})
        return len(lost)

    def check_expression(self, sweep: Sweep) -> None:
        """``where``, ``names`` and ``values`` read by DynamoDB itself, before anything is
        written: a one-item Scan with the workers' filter. A rejection (which every
        segment would meet) is a ConfigError naming the sweep and the key."""
        if sweep.where is None:
            return
        expressions = Expressions.build(
            sweep, key_attributes(self.dynamodb, sweep.table, self.retry)
        )
        request: dict[str, Any] = {
            "TableName": sweep.table,
            "Limit": 1,
            "ProjectionExpression": expressions.projection,
            "FilterExpression": expressions.filter,
            "ExpressionAttributeNames": expressions.projection_names | expressions.filter_names,
        }
        if expressions.filter_values:
            request["ExpressionAttributeValues"] = expressions.filter_values
        try:
            self.retry.call(lambda: self.dynamodb.scan(**request), "Scan")
        except FatalError as exc:
            code, _, message = str(exc).partition(": ")
            if code != "ValidationException":
                raise
            key = "where"
            if "ExpressionAttributeNames" in message:
                key = "names"
            elif "ExpressionAttributeValues" in message:
                key = "values"
            raise ConfigError(
                f"sweep {sweep.name!r}: {key}: DynamoDB rejects it: {message}"
            ) from None

    def _sizing(self, sweep: Sweep, previous: RunRecord | None) -> Sizing:
        """How "auto" sizes segments (DescribeTable is called either way: it checks the
        table is there before anything is written)."""
        table = self.retry.call(
            lambda: self.dynamodb.describe_table(TableName=sweep.table), "DescribeTable"
        )["Table"]
        self._description = table  # the write budget's default comes from it too
        rate, source = measured_rate(previous) or (DEFAULT_ITEMS_PER_WORKER_SECOND, "default")
        budget = getattr(sweep, "max_write_units_per_second", None)  # where the config has one
        return size_segments(
            int(table.get("ItemCount", 0)),
            int(table.get("TableSizeBytes", 0)),
            items_per_worker_second=rate,
            rate_source=source,
            fleet=self.fleet,
            write_units_per_second=float(budget) if budget else None,
        )


def shard_message(run: RunRecord, first: int, count: int) -> PlanShardMessage:
    return PlanShardMessage(
        run_id=run.run_id,
        sweep=run.sweep,
        table=run.table,
        total_segments=run.total_segments,
        cutoff=parse_instant(run.cutoff),
        dry_run=run.dry_run,
        first=first,
        count=count,
    )


def plan_shard(message: PlanShardMessage, ledger: Ledger, queue: SegmentQueue) -> int:
    """Write the shard's missing segment items, send the messages of those not started
    yet, mark the shard planned; how many messages were sent. Idempotent: a redelivery
    after a crash anywhere writes only what is missing, and a segment message sent
    twice is absorbed by its deduplication id or by the ledger's hop check."""
    if ledger.get_run(message.run_id) is None:
        raise FatalError(f"run {message.run_id} of plan shard {message.first} is not in the ledger")
    missing, unstarted = ledger.planning.unplanned_segments(message.run_id, message.segments())
    ledger.planning.create_segments(message.run_id, missing)
    to_send = sorted(missing + unstarted)
    queue.send_all([message.segment_message(segment) for segment in to_send])
    ledger.planning.mark_shard_planned(message.run_id, message.first)
    return len(to_send)


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


def plan(request: PlanRequest, runtime: Runtime) -> dict[str, Any]:
    """The planner Lambda's work: plan the requested sweep, or every sweep."""
    sweeps = [runtime.sweep(request.sweep)] if request.sweep else list(runtime.sweeps)
    planner = Planner(
        ledger=Ledger(runtime.dynamodb, runtime.settings.ledger_table),
        queue=SegmentQueue(runtime.sqs, runtime.settings.queue_url),
        dynamodb=runtime.dynamodb,
        max_concurrency=runtime.settings.max_concurrency,
        fleet=fleet(),
    )
    return {"runs": [planner.plan(sweep, dry_run=request.dry_run).to_json() for sweep in sweeps]}


@cache
def fleet() -> Fleet:
    """The workers' timeout and MaximumConcurrency, read once per container."""
    return Fleet.from_env()
