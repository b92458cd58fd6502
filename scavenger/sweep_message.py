"""One segment message, end to end: the adapters wired within the record's budget, the
sweep (scavenger.sweep), and the halt of the run on an error every segment would meet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from scavenger.errors import FatalError, SystemicError, systemic
from scavenger.events import RunReporter
from scavenger.expiry import Expressions
from scavenger.ledger import Ledger, now_iso
from scavenger.message import SegmentMessage
from scavenger.observability import logger
from scavenger.queue import SegmentQueue
from scavenger.records import Halt
from scavenger.retry import Budget, RetryPolicy
from scavenger.runtime import Runtime
from scavenger.sweep import SegmentSweeper, SweepResult, halt_segment
from scavenger.table import Meter, SweptTable

T = TypeVar("T")


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


def control_floor(margin: float) -> float:
    """How close to the deadline a ledger, queue or key-lookup call may still be retried:
    a tenth of the safety margin. Data-plane calls stop at the whole margin, so these
    have the rest to checkpoint and continue, and none runs into the timeout
    (invariant 5)."""
    return margin / 10


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
    control_retry = RetryPolicy(deadline, floor_seconds=control_floor(margin), sleep=runtime.sleep)
    ledger = Ledger(runtime.dynamodb, settings.ledger_table, control_retry)
    reporter = None
    if settings.event_bus and runtime.events is not None:
        reporter = RunReporter(runtime.events, settings.event_bus, ledger)
    halted = _halted_before_key_lookup(message, runtime, ledger, reporter)
    if halted is not None:
        return halted
    try:
        lookup = SweptTableRetry(
            message.table, deadline, floor_seconds=control_floor(margin), sleep=runtime.sleep
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


def _halted_before_key_lookup(
    message: SegmentMessage, runtime: Runtime, ledger: Ledger, reporter: RunReporter | None
) -> SweepResult | None:
    """The key lookup is a call to the swept table, made before the claim: in a halted
    run, a cold container lets the message go (the segment halted) without making it."""
    if runtime.knows_keys(message.table):
        return None
    run = ledger.get_run(message.run_id)
    if run is None or run.halt is None:
        return None
    halter = reporter if run.halt.segment == message.segment else None
    return halt_segment(ledger, message, run.halt.describe(), halter)
