"""A worker's batch: SQS FIFO segment messages with partial batch failures.

A failing record fails only itself and the later records of its own message
group; other groups in the batch go on. worker/handler.py is the Lambda entry point.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from scavenger.errors import InvalidMessage, OutOfTime
from scavenger.ledger import Ledger
from scavenger.message import PlanShardMessage, SegmentMessage
from scavenger.observability import emit_counts, logger
from scavenger.plan import plan_shard
from scavenger.queue import SegmentQueue
from scavenger.retry import Budget, Deadline, RecordBudget, RetryPolicy, TimeShares
from scavenger.runtime import Runtime
from scavenger.sweep_message import control_floor, sweep_message


def handle(event: dict[str, Any], context: Any, runtime: Runtime) -> dict[str, Any]:
    """The batch, with the container's runtime passed in (tests and benchmarks build their own)."""
    invocation = Deadline(context.get_remaining_time_in_millis)
    shares = TimeShares(
        invocation, len(event.get("Records", [])), runtime.settings.safety_margin_seconds
    )
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # Report a batch whose records all failed like any other partial failure, so the
    # response always names exactly the records to retry.
    processor.raise_on_entire_batch_failure = False
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event,
        record_handler=lambda record: process_record(record, runtime, shares.next()),
        processor=processor,
        context=context,
    )
    return response


def process_record(record: SQSRecord, runtime: Runtime, deadline: RecordBudget) -> str:
    logger.remove_keys(["run_id", "sweep", "segment", "hop"])
    try:
        message = PlanShardMessage.parse_if_shard(record.body) or SegmentMessage.parse(record.body)
    except InvalidMessage as exc:
        logger.error("poison message", extra={"message_id": record.message_id, "error": str(exc)})
        raise
    if deadline.invocation_seconds() < runtime.settings.safety_margin_seconds:
        # Too late to claim, checkpoint and continue safely: hand the record back
        # untouched rather than be killed mid-call with the whole batch.
        raise OutOfTime(f"{deadline.invocation_seconds():.2f}s left, record handed back")
    if isinstance(message, PlanShardMessage):
        return _plan_shard(message, runtime, deadline)
    logger.append_keys(
        run_id=message.run_id, sweep=message.sweep, segment=message.segment, hop=message.hop
    )
    try:
        result = sweep_message(message, runtime, deadline)
    except Exception as exc:
        logger.exception("segment failed")
        _record_failure(runtime, message, exc, deadline.invocation)
        raise
    emit_counts(message.sweep, result.counts)
    logger.info(
        "segment message processed",
        extra={"outcome": result.outcome.value, "reason": result.reason, **result.counts.as_dict()},
    )
    return result.outcome.value


def _record_failure(
    runtime: Runtime, message: SegmentMessage, exc: Exception, deadline: Budget
) -> None:
    """Best effort: note the error on the segment item; the record fails either way."""
    floor = control_floor(runtime.settings.safety_margin_seconds)
    retry = RetryPolicy(deadline, floor_seconds=floor, max_attempts=3, sleep=runtime.sleep)
    ledger = Ledger(runtime.dynamodb, runtime.settings.ledger_table, retry)
    try:
        ledger.record_failure(message.run_id, message.segment, f"{type(exc).__name__}: {exc}")
    except Exception:
        logger.exception("could not record the failure in the ledger")


def _plan_shard(shard: PlanShardMessage, runtime: Runtime, deadline: RecordBudget) -> str:
    """A large run's share of fan-out (scavenger.plan.plan_shard); a failure fails the
    record and its redelivery finishes the shard."""
    logger.append_keys(run_id=shard.run_id, sweep=shard.sweep, segment=shard.first)
    settings = runtime.settings
    floor = control_floor(settings.safety_margin_seconds)
    retry = RetryPolicy(deadline, floor_seconds=floor, sleep=runtime.sleep)
    sent = plan_shard(
        shard,
        Ledger(runtime.dynamodb, settings.ledger_table, retry),
        SegmentQueue(runtime.sqs, settings.queue_url, retry),
    )
    logger.info("plan shard processed", extra={"segments": shard.count, "sent": sent})
    return "planned"
