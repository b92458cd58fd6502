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

import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from scavenger.budget import WriteBudget, choose_budget
from scavenger.config import Sweep
from scavenger.errors import ConfigError, FatalError
from scavenger.expiry import Expressions, format_instant, parse_instant
from scavenger.ledger import Ledger
from scavenger.message import Outgoing, PlanShardMessage, SegmentMessage
from scavenger.observability import logger
from scavenger.queue import SegmentQueue, SendFailed
from scavenger.records import RunRecord
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.runtime import Runtime
from scavenger.sizing import (
    DEFAULT_BATCH_ITEMS_PER_WORKER_SECOND,
    DEFAULT_ITEMS_PER_WORKER_SECOND,
    Fleet,
    Sizing,
    measured_rate,
    measured_write_share,
    size_segments,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# A shard plans 1,000 segments: 40 BatchWriteItem, 10 BatchGetItem and 100
# SendMessageBatch calls, a few seconds of a worker. Past 1,000 segments the planner
# fans out in shards: at the 1,000,000-segment maximum it writes and sends 1,000.
SHARD_SEGMENTS = 1_000
SHARD_THRESHOLD = 1_000
# A shard still pending this long after its planner wrote it lost its message (no
# planner invocation lives longer than Lambda's 15 minutes): send it again.
RESEND_SHARDS_AFTER = timedelta(minutes=15)
RACED = "another planner started a run of this sweep at the same time"


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

    def logged(self) -> dict[str, Any]:
        """The "run started" log line's fields."""
        return {
            "sweep": self.sweep,
            "run_id": self.run_id,
            "segments": self.segments,
            "shards": self.shards,
            "dry_run": self.dry_run,
            "write_budget": self.write_budget.to_json() if self.write_budget else None,
        }


def new_run_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


class Planner:
    def __init__(
        self,
        *,
        ledger: Ledger,
        queue: SegmentQueue,
        dynamodb: DynamoDBClient,
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
        self.descriptions: dict[str, Mapping[str, Any]] = {}  # DescribeTable, per table
        self.shard_threshold = SHARD_THRESHOLD if shard_threshold is None else shard_threshold
        self.shard_segments = SHARD_SEGMENTS if shard_segments is None else shard_segments
        self.fleet = fleet or Fleet.from_env()

    def plan(self, sweep: Sweep, *, dry_run: bool = False) -> PlanResult:
        dry_run = dry_run or sweep.dry_run
        previous = self.ledger.latest_run_id(sweep.name)
        last = self.ledger.get_run(previous) if previous is not None else None
        blocked = self._blocked(sweep, last)
        if blocked is not None:
            return blocked
        # After the ledger's checks: a run halted by a denied table says so, rather
        # than failing here on the same denial.
        self.check_expression(sweep)
        budget = self.budget(sweep)  # DescribeTable: the table is there, and its capacity
        sizing = self._sizing(sweep, last, budget)
        total = sweep.segments if sweep.segments != "auto" else sizing.segments
        budget = budget.shared(total, self.max_concurrency)
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        run_id = new_run_id(now)
        if not self.ledger.point_sweep_at(sweep.name, run_id, previous):
            return not_started(
                sweep, "another planner started a run of this sweep at the same time"
            )
        run = RunRecord(
            run_id=run_id,
            sweep=sweep.name,
            table=sweep.table,
            total_segments=total,
            cutoff=format_instant(now - sweep.max_age),
            dry_run=dry_run,
            created_at=format_instant(now),
        )
        shards = self._shards(total)
        self.ledger.planning.create_run(run, shards)
        self._send(run, shards, budget.per_worker)
        result = PlanResult(
            sweep=sweep.name,
            started=True,
            run_id=run_id,
            segments=total,
            cutoff=run.cutoff,
            dry_run=dry_run,
            write_budget=budget,
            shards=len(shards),
            sizing=sizing.to_json() if sweep.segments == "auto" else None,
        )
        logger.info("run started", extra=result.logged())
        return result

    def _blocked(self, sweep: Sweep, last: RunRecord | None) -> PlanResult | None:
        """Why the sweep's last run keeps a new one from starting (halted, or still
        running: its lost shards are sent again); None when nothing does."""
        if last is None or last.status not in ("halted", "running"):
            return None
        if last.status == "halted":
            why = last.halt.describe() if last.halt else "no error recorded"
            reason = (
                f"run {last.run_id} is halted: {why}; "
                f"fix it and `scavenger requeue {last.run_id} --halted`"
            )
        else:
            reason = (
                f"run {last.run_id} is still running "
                f"({last.segments_done}/{last.total_segments} segments done)"
            )
            resent = self._resend_lost_shards(sweep, last)
            if resent:
                reason += f"; sent its {resent} shards whose message was lost again"
        return not_started(sweep, reason, last.run_id)

    def _send(self, run: RunRecord, shards: list[tuple[int, int]], wcu: float | None) -> None:
        """The run's messages: one per shard past the threshold, else one per segment,
        each carrying a worker's share of the write budget (``wcu``)."""
        messages: list[Outgoing] = [
            shard_message(run, first, count, wcu) for first, count in shards
        ]
        if not shards:
            carried = run.message_fields()
            messages = [
                SegmentMessage(**carried, segment=segment, wcu=wcu)
                for segment in range(run.total_segments)
            ]
        try:
            self.queue.send_all(messages)
        except SendFailed as exc:
            raise self._unsent(run, bool(shards), exc) from exc

    def _unsent(self, run: RunRecord, sharded: bool, exc: SendFailed) -> SendFailed:
        """What to tell of messages that did not leave, having made them resendable."""
        if sharded:
            # Their shard items stay pending: the sweep's next planner sends them.
            return SendFailed(
                exc.segments,
                f"{exc.reason}; run {run.run_id} keeps the shards starting at these "
                "segments pending: the sweep's next `scavenger plan` sends them",
            )
        # The run exists and blocks the next one: make the unsent segments visible
        # as failed, so `scavenger status` shows them and `requeue` sends them.
        for segment in exc.segments:
            self.ledger.record_failure(run.run_id, segment, f"planner could not send: {exc.reason}")
        return SendFailed(
            exc.segments,
            f"{exc.reason}; run {run.run_id} has them marked failed: "
            f"`scavenger requeue {run.run_id} --segment N` sends them",
        )

    def _shards(self, total: int) -> list[tuple[int, int]]:
        """(first segment, count) per shard; none at or below the threshold."""
        if total <= self.shard_threshold:
            return []
        size = self.shard_segments
        return [(first, min(size, total - first)) for first in range(0, total, size)]

    def _resend_lost_shards(self, sweep: Sweep, run: RunRecord) -> int:
        """Send again the shards of ``run`` still pending long after they were written
        (their planner died or failed to send), with the write budget's share as it
        stands now; how many."""
        stale_before = self.clock().astimezone(UTC) - RESEND_SHARDS_AFTER
        lost = [
            (first, count)
            for first, count, updated_at in self.ledger.planning.pending_shards(run.run_id)
            if parse_instant(updated_at) < stale_before
        ]
        if lost:
            wcu = self.budget(sweep).shared(run.total_segments, self.max_concurrency).per_worker
            self.queue.send_all([shard_message(run, first, count, wcu) for first, count in lost])
            logger.warning("shards sent again", extra={"run_id": run.run_id, "shards": len(lost)})
        return len(lost)

    def check_expression(self, sweep: Sweep) -> None:
        """``where``, ``names`` and ``values`` read by DynamoDB itself, before anything is
        written: a one-item Scan with the workers' filter. A rejection (which every
        segment would meet) is a ConfigError naming the sweep and the key."""
        if sweep.where is None:
            return
        schema = self.described(sweep.table)["KeySchema"]
        hash_first = sorted(schema, key=lambda key: key["KeyType"] != "HASH")
        expressions = Expressions.build(sweep, tuple(key["AttributeName"] for key in hash_first))
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

    def described(self, table: str) -> Mapping[str, Any]:
        """The table's DescribeTable answer, asked once per planner and table."""
        if table not in self.descriptions:
            self.descriptions[table] = self.retry.call(
                lambda: self.dynamodb.describe_table(TableName=table), "DescribeTable"
            )["Table"]
        return self.descriptions[table]

    def budget(self, sweep: Sweep) -> WriteBudget:
        """The run's fleet-wide write budget (configured, or half the table's capacity)."""
        return choose_budget(sweep.max_write_units_per_second, self.described(sweep.table))

    def _sizing(self, sweep: Sweep, previous: RunRecord | None, budget: WriteBudget) -> Sizing:
        """How "auto" sizes segments: from the last run's rate (or the delete path's
        default) and the write budget."""
        table = self.described(sweep.table)
        default = (
            DEFAULT_BATCH_ITEMS_PER_WORKER_SECOND
            if sweep.delete_mode == "batch"
            else DEFAULT_ITEMS_PER_WORKER_SECOND
        )
        rate, source = measured_rate(previous) or (default, "default")
        return size_segments(
            int(table.get("ItemCount", 0)),
            int(table.get("TableSizeBytes", 0)),
            items_per_worker_second=rate,
            rate_source=source,
            fleet=self.fleet,
            write_units_per_second=budget.units_per_second,
            write_units_per_item=measured_write_share(previous) or 1.0,
        )


def not_started(sweep: Sweep, reason: str, run_id: str | None = None) -> PlanResult:
    logger.warning("sweep not started", extra={"sweep": sweep.name, "reason": reason})
    return PlanResult(sweep=sweep.name, started=False, run_id=run_id, reason=reason)


def shard_message(
    run: RunRecord, first: int, count: int, wcu: float | None = None
) -> PlanShardMessage:
    return PlanShardMessage(**run.message_fields(), first=first, count=count, wcu=wcu)


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
