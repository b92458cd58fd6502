"""Sweep one segment message: check the ledger, scan, delete, checkpoint, continue.

The ledger, not the message, says where a segment stands (DESIGN.md, "Ledger
table"). Every page is checkpointed with a compare-and-set, so duplicates and
stale hops are detected rather than counted twice.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from scavenger.config import Sweep
from scavenger.errors import FatalError, RetryableError, SystemicError, systemic
from scavenger.events import RunReporter
from scavenger.expiry import Age, AgeRule, Expressions
from scavenger.ledger import Ledger, now_iso
from scavenger.message import Key, SegmentMessage
from scavenger.observability import logger
from scavenger.pacing import Pacing, WritePacer
from scavenger.queue import SegmentQueue
from scavenger.records import Counts, Halt, SegmentState
from scavenger.retry import Budget, RetryPolicy
from scavenger.runtime import Runtime
from scavenger.table import MAX_STATEMENTS, Deleted, Meter, SweptTable

T = TypeVar("T")

# How many times a delete whose condition failed is tried again on an item that
# was rewritten and is still expired (a writer that keeps rewriting it wins).
REREADS = 2


class Outcome(enum.Enum):
    DONE = "done"  # the segment is finished
    CONTINUED = "continued"  # out of time: a continuation (hop + 1) is on the queue
    DROPPED = "dropped"  # duplicate, stale hop or finished segment: nothing to do
    SUPERSEDED = "superseded"  # another worker checkpointed first: it owns the segment
    HALTED = "halted"  # the run is halted: the segment keeps its checkpoint, resumed by requeue


@dataclass(frozen=True)
class SweepResult:
    outcome: Outcome
    counts: Counts = field(default_factory=Counts)
    reason: str = ""


@dataclass
class Tally:
    """Counters of the page in progress (mutable, folded into Counts at checkpoint)."""

    scanned: int = 0
    expired: int = 0
    deleted: int = 0
    skipped: int = 0
    unparseable: int = 0
    usage: Meter = field(default_factory=Meter)

    def freeze(self) -> Counts:
        return Counts(
            scanned=self.scanned,
            expired=self.expired,
            deleted=self.deleted,
            skipped=self.skipped,
            unparseable=self.unparseable,
            **_usage(self.usage),
        )

    def only_deletions(self) -> Counts:
        """What a half-done page may record: its deleted items vanish from any rescan,
        while everything else will be seen and counted again. What it cost is real."""
        return Counts(
            scanned=self.deleted, expired=self.deleted, deleted=self.deleted, **_usage(self.usage)
        )


def _usage(meter: Meter) -> dict[str, Any]:
    return {
        "throttled": meter.retries,
        "read_units": meter.read_units,
        "write_units": meter.write_units,
        "write_units_by_index": dict(meter.write_units_by_index),
    }


class Pacer:
    """Spaces deletes to at most ``rate`` per second (0 = no limit)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.next_at = 0.0

    def delay(self, count: int = 1) -> float:
        """The wait before ``count`` deletes sent at once (a batch takes count slots)."""
        if not self.interval:
            return 0.0
        now = self.clock()
        self.next_at = max(self.next_at, now)
        wait = self.next_at - now
        self.next_at += self.interval * count
        return wait


@dataclass
class SegmentSweeper:
    """Runs one message to DONE, CONTINUED, DROPPED or SUPERSEDED."""

    message: SegmentMessage
    sweep: Sweep
    ledger: Ledger
    table: SweptTable
    queue: SegmentQueue
    deadline: Budget
    meter: Meter
    page_size: int
    max_hops: int
    floor_seconds: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    counts: Counts = field(default_factory=Counts)
    reporter: RunReporter | None = None  # publishes the run's report once it is closed
    pacing: Pacing | None = field(default=None, init=False)

    def run(self) -> SweepResult:
        self.began = self.clock()
        state = self._claim()
        if isinstance(state, SweepResult):
            return state
        rule = AgeRule(self.sweep.age_attribute, self.sweep.age_format, self.message.cutoff)
        pacer = self.pacing = Pacing(
            Pacer(self.sweep.deletes_per_second, self.clock), self._write_pacer(), self.meter
        )
        cursor, checkpoints = state.cursor, state.checkpoints
        slowest_page = 0.0
        while True:
            if self.deadline.remaining_seconds() < self.floor_seconds + 1.5 * slowest_page:
                return self._continue(cursor)
            started = self.clock()
            before = self.meter.snapshot()
            try:
                page = self.table.scan_page(
                    self.message.segment, self.message.total_segments, cursor, self.page_size
                )
            except RetryableError as exc:
                logger.warning("scan gave up, continuing later", extra={"error": str(exc)})
                spent = Counts(**_usage(self.meter.since(before)))
                if not self._checkpoint(checkpoints, cursor, spent, False):
                    return SweepResult(Outcome.SUPERSEDED, self.counts, "checkpoint lost")
                return self._continue(cursor)
            tally = Tally(scanned=page.scanned)
            finished_page = self._sweep_page(page.items, rule, pacer, tally)
            tally.usage = self.meter.since(before)
            if not finished_page:
                if not self._checkpoint(checkpoints, cursor, tally.only_deletions(), False):
                    return SweepResult(Outcome.SUPERSEDED, self.counts, "checkpoint lost")
                return self._continue(cursor)
            done = page.last_key is None
            counts = tally.freeze() + self._usage() if done else tally.freeze()
            if not self._checkpoint(checkpoints, page.last_key, counts, done):
                return SweepResult(Outcome.SUPERSEDED, self.counts, "checkpoint lost")
            checkpoints += 1
            cursor = page.last_key
            slowest_page = max(slowest_page, self.clock() - started)
            logger.debug("page", extra={"counts": tally.freeze().as_dict()})
            if done:
                self._finish_run()
                return SweepResult(Outcome.DONE, self.counts)

    def _write_pacer(self) -> WritePacer | None:
        """The message's share of the fleet's write budget, from the rate it was carried at."""
        if not self.message.wcu:
            return None
        return WritePacer(self.message.wcu, self.message.wcu_rate, self.clock)

    def _claim(self) -> SegmentState | SweepResult:
        """Compare the message with the ledger: proceed, or drop a duplicate/stale hop.

        The run item comes in the same read: in a halted run the segment is marked
        halted at its checkpoint and the message let go, without touching the table.
        """
        hop = self.message.hop
        for _ in range(3):
            state, run = self.ledger.get_segment_and_run(self.message.run_id, self.message.segment)
            if state is None:
                raise FatalError(
                    f"segment {self.message.segment} of run {self.message.run_id} "
                    "is not in the ledger"
                )
            if state.status == "done":
                # The segment was counted with its move to done (one transaction); a
                # crash may have come before the run was finished: finish it if due.
                self._finish_run()
                if run is not None and run.status != "running":
                    self._report_closed()  # its closing worker may have died unreported
                return SweepResult(Outcome.DROPPED, reason="segment already done")
            if hop < state.hop:
                return SweepResult(Outcome.DROPPED, reason=f"stale hop {hop} < {state.hop}")
            if run is not None and run.halt is not None:
                return halt_segment(
                    self.ledger, self.message, run.halt.describe(), self._halter(run.halt)
                )
            if state.status == "halted":
                return SweepResult(
                    Outcome.DROPPED,
                    reason="segment halted: `scavenger requeue RUN_ID --halted` resumes it",
                )
            if hop == state.hop:
                return state
            if self.ledger.raise_hop(self.message.run_id, self.message.segment, hop):
                return SegmentState(**{**vars(state), "hop": hop, "status": "running"})
        raise RetryableError("ledger kept changing while claiming the segment")

    def _sweep_page(
        self, items: list[dict[str, Any]], rule: AgeRule, pacer: Pacing, tally: Tally
    ) -> bool:
        """Classify and delete one page's items; False if time ran out part-way."""
        expired: list[dict[str, Any]] = []
        for item in items:
            age = rule.classify(item)
            if age is Age.UNPARSEABLE:
                tally.unparseable += 1
            elif age is Age.EXPIRED:
                tally.expired += 1
                expired.append(item)
        if self.message.dry_run:
            return True
        batch = self.sweep.delete_mode == "batch" and self.table.expressions.pinned is not None
        size = MAX_STATEMENTS if batch else 1
        for start in range(0, len(expired), size):
            chunk = expired[start : start + size]
            if self.deadline.remaining_seconds() < self.floor_seconds:
                return False
            wait = pacer.delay(len(chunk))
            if wait:
                if self.deadline.remaining_seconds() - wait < self.floor_seconds:
                    return False
                self.sleep(wait)
            try:
                if batch:
                    self._delete_batch(chunk, rule, tally)
                elif self._delete(chunk[0], rule):
                    tally.deleted += 1
                else:
                    tally.skipped += 1
            except RetryableError:
                return False
            finally:
                pacer.settle()
        return True

    def _delete_batch(self, items: list[dict[str, Any]], rule: AgeRule, tally: Tally) -> None:
        """Delete up to 25 expired items in one call, each pinned to what was scanned.

        A statement whose pins failed brings the item as it is now. Gone, fresh or
        unparseable: skipped. Still expired with ``where``'s attributes as scanned: tried
        again at its new age (up to REREADS times). ``where``'s attributes changed: the
        item path's conditional delete (which evaluates ``where``) decides.
        Each verdict is counted once, as it arrives, so a batch cut short by the
        budget has counted exactly what it did.
        """
        for round_ in range(1 + REREADS):
            again: list[dict[str, Any]] = []
            rewritten: list[dict[str, Any]] = []
            retry = round_ < REREADS
            self.table.delete_batch(
                items, functools.partial(self._judge, rule, tally, again, rewritten, retry)
            )
            for current in rewritten:
                if self._delete(current, rule, REREADS - round_ - 1):
                    tally.deleted += 1
                else:
                    tally.skipped += 1
            if not again:
                return
            items = again

    def _judge(
        self,
        rule: AgeRule,
        tally: Tally,
        again: list[dict[str, Any]],
        rewritten: list[dict[str, Any]],
        retry: bool,
        item: dict[str, Any],
        verdict: Deleted,
        current: dict[str, Any] | None,
    ) -> None:
        """Count one statement's verdict, or queue the item for another try."""
        attribute = self.sweep.age_attribute
        if verdict is Deleted.DELETED:
            tally.deleted += 1
        elif (
            verdict is Deleted.GONE
            or current is None
            or rule.classify(current) is not Age.EXPIRED
            or not retry
        ):
            tally.skipped += 1
        elif not self.table.statement.unchanged(item, current):
            # What ``where`` reads changed: only its own condition can tell.
            rewritten.append(current)
        elif current.get(attribute) == item[attribute]:
            tally.skipped += 1  # changed and changed back: as the item path, leave it
        else:
            again.append(current)

    def _delete(self, item: dict[str, Any], rule: AgeRule, rereads: int = REREADS) -> bool:
        """Delete an expired item on condition that it is unchanged.

        When the condition fails, the item is read again: one rewritten since the
        scan with another expired age (an older time, the same instant spelled
        differently) is still expired and is deleted at its new value. One that
        is gone, fresh, unparseable or no longer matches ``where`` is left alone.
        """
        attribute = self.sweep.age_attribute
        for _ in range(1 + rereads):
            if self.table.delete_if_unchanged(item, item[attribute]):
                return True
            current = self.table.current(item)
            if (
                current is None
                or current.get(attribute) == item[attribute]
                or rule.classify(current) is not Age.EXPIRED
            ):
                return False
            item = current
        return False

    def _checkpoint(self, checkpoints: int, cursor: Key | None, counts: Counts, done: bool) -> bool:
        counts = counts + Counts(pages=1)  # each checkpoint is one ledger write
        ok = self.ledger.checkpoint(
            self.message.run_id,
            self.message.segment,
            hop=self.message.hop,
            checkpoints=checkpoints,
            cursor=cursor,
            counts=counts,
            done=done,
        )
        if ok:
            self.counts = self.counts + counts
        return ok

    def _continue(self, cursor: Key | None) -> SweepResult:
        """Send the continuation first, then raise the hop; a crash between is harmless."""
        if self.message.hop + 1 > self.max_hops:
            error = f"hop budget exhausted: {self.message.hop + 1} > max_hops {self.max_hops}"
            self.ledger.record_failure(self.message.run_id, self.message.segment, error)
            raise FatalError(error)
        rate = self.pacing.rate if self.pacing is not None else None
        self.queue.send(self.message.continuation(cursor, wcu_rate=rate))
        usage = self._usage()
        if self.ledger.advance_hop(
            self.message.run_id, self.message.segment, self.message.hop, usage
        ):
            self.counts = self.counts + usage
        return SweepResult(Outcome.CONTINUED, self.counts)

    def _usage(self) -> Counts:
        """This message's share of the bill, recorded once with its last write."""
        return Counts(messages=1, worker_ms=round((self.clock() - self.began) * 1000))

    def _finish_run(self) -> None:
        """Finish the run if this segment's count completed it (idempotent), and report it."""
        totals = self.ledger.finish_run_if_complete(self.message.run_id)
        if totals is not None:
            logger.info("run done", extra={"totals": totals.as_dict()})
            self._report_closed()

    def _halter(self, halt: Halt) -> RunReporter | None:
        """The reporter, for the redelivery of the message whose segment halted the run."""
        return self.reporter if halt.segment == self.message.segment else None

    def _report_closed(self) -> None:
        if self.reporter is not None:
            self.reporter.run_closed(self.message.run_id)


class SweptTableRetry(RetryPolicy):
    """The retry policy of one swept table's calls: a fatal error that every segment
    would meet too is raised as SystemicError, naming the call and the table."""

    def __init__(self, table: str, budget: Budget, **options: Any):
        super().__init__(budget, **options)
        self.table = table

    def call(self, operation: Callable[[], T], what: str) -> T:
        try:
            return super().call(operation, what)
        except FatalError as exc:
            found = systemic(exc, what, self.table)
            if found is None:
                raise
            raise found from exc


def halt_run(
    ledger: Ledger,
    message: SegmentMessage,
    error: SystemicError,
    reporter: RunReporter | None = None,
) -> SweepResult:
    """Halt the run on ``error`` (the first halter's error is kept), then this segment.

    The run goes first: a crash in between leaves a redelivery that finds the run
    halted and halts the segment. Ledger errors propagate: the record then fails and
    comes back, as for any other failure.
    """
    halt = Halt(
        call=error.call,
        resource=error.resource,
        code=error.code,
        message=error.message,
        segment=message.segment,
        at=now_iso(),
    )
    first = ledger.halt_run(message.run_id, halt)
    logger.error(
        "run halted" if first else "systemic error in a run that is no longer running",
        extra={"call": error.call, "resource": error.resource, "error": str(error)},
    )
    return halt_segment(ledger, message, str(error), reporter if first else None)


def halt_segment(
    ledger: Ledger, message: SegmentMessage, error: str, reporter: RunReporter | None = None
) -> SweepResult:
    """Mark the segment halted at its checkpoint and let its message go. ``reporter`` is
    given to the worker that halted the run, and to the redelivery of its message (it
    may have died before publishing): the run's report is published if not yet."""
    if reporter is not None:
        reporter.run_closed(message.run_id)
    if ledger.halt_segment(message.run_id, message.segment, message.hop, f"halted: {error}"):
        return SweepResult(Outcome.HALTED, reason=error)
    return SweepResult(Outcome.DROPPED, reason="halted run: segment done or held by a later hop")


def sweep_message(message: SegmentMessage, runtime: Runtime, deadline: Budget) -> SweepResult:
    """Wire the adapters for one message and sweep it; halt the run on a systemic error."""
    settings = runtime.settings
    sweep = runtime.sweep(message.sweep)
    if sweep.table != message.table:
        raise FatalError(f"message table {message.table!r} is not sweep's table {sweep.table!r}")
    margin = settings.safety_margin_seconds
    meter = Meter()
    # Data-plane calls give up while there is still time to checkpoint and continue;
    # ledger and queue calls may use that reserve.
    data_retry = SweptTableRetry(
        message.table,
        deadline,
        floor_seconds=margin,
        sleep=runtime.sleep,
        on_retry=meter.count_retry,
    )
    control_retry = RetryPolicy(deadline, floor_seconds=margin / 10, sleep=runtime.sleep)
    ledger = Ledger(runtime.dynamodb, settings.ledger_table, control_retry)
    reporter = None
    if settings.event_bus and runtime.events is not None:
        reporter = RunReporter(runtime.events, settings.event_bus, ledger)
    if not runtime.knows_keys(message.table):
        # The key lookup below is a call to the swept table, made before the claim:
        # in a halted run, a cold container stops here without making it.
        run = ledger.get_run(message.run_id)
        if run is not None and run.halt is not None:
            halter = reporter if run.halt.segment == message.segment else None
            return halt_segment(ledger, message, run.halt.describe(), halter)
    try:
        lookup = SweptTableRetry(
            message.table, deadline, floor_seconds=margin / 10, sleep=runtime.sleep
        )
        keys = runtime.key_attributes(message.table, lookup)
        table = SweptTable(
            runtime.dynamodb, message.table, keys, Expressions.build(sweep, keys), data_retry, meter
        )
        return SegmentSweeper(
            message=message,
            sweep=sweep,
            ledger=ledger,
            table=table,
            queue=SegmentQueue(runtime.sqs, settings.queue_url, control_retry),
            deadline=deadline,
            meter=meter,
            page_size=settings.page_size,
            max_hops=settings.max_hops,
            floor_seconds=margin,
            sleep=runtime.sleep,
            clock=runtime.clock,
            reporter=reporter,
        ).run()
    except SystemicError as exc:
        return halt_run(ledger, message, exc, reporter)
