"""Invariant 5 on a worker's calls outside the sweep: a plan shard's ledger and queue
calls, and the note of a failed record, keep the same floor before the invocation's
deadline as a sweep's ledger and queue calls (scavenger.sweep_message.control_floor)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from scavenger.batch import handle
from scavenger.config import parse_sweeps
from scavenger.message import PlanShardMessage, SegmentMessage
from scavenger.runtime import Runtime
from scavenger.settings import Settings
from scavenger.sweep_message import control_floor
from tests.conftest import FakeClock, FakeContext, sqs_event

MARGIN = 1.5  # the default safety margin
SWEEP = {
    "name": "sweep",
    "table": "Workers",
    "age_attribute": "ts",
    "age_format": "iso8601",
    "max_age": "48h",
}
FIELDS: dict[str, Any] = {
    "run_id": "20261123T020000Z-3f9c",
    "sweep": "sweep",
    "total_segments": 8,
    "cutoff": datetime(2026, 11, 21, 2, tzinfo=UTC),
    "dry_run": False,
}


class SlowThrottledClient:
    """Throttles every call, the first one after it used up ``first_call_seconds``; notes
    the invocation's time left as each call begins."""

    def __init__(self, clock: FakeClock, first_call_seconds: float):
        self.clock = clock
        self.first_call_seconds = first_call_seconds
        self.context: FakeContext | None = None
        self.time_left: list[float] = []

    def __getattr__(self, operation: str) -> Any:
        def call(**_: Any) -> None:
            assert self.context is not None
            self.time_left.append(self.context.get_remaining_time_in_millis() / 1000)
            if len(self.time_left) == 1:
                self.clock.advance(self.first_call_seconds)
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
            raise ClientError({"Error": error}, operation)

        return call


def plan_shard_body() -> str:
    return PlanShardMessage(table="Workers", first=0, count=4, **FIELDS).to_json()


def failing_segment_body() -> str:
    # Not the sweep's table: the sweep fails at once, and the failure is noted.
    return SegmentMessage(table="Other", segment=3, cursor=None, hop=0, **FIELDS).to_json()


@pytest.mark.parametrize("body", [plan_shard_body, failing_segment_body], ids=lambda f: f.__name__)
def test_no_retry_begins_inside_the_floor_before_the_deadline(body: Any) -> None:
    # A record taken with just over the margin left, whose first ledger call is slow
    # and throttled: the time left after it is under the floor, so no retry may begin
    # (a retry there would run into the invocation's timeout).
    clock = FakeClock()
    client = SlowThrottledClient(clock, first_call_seconds=MARGIN)
    runtime = Runtime(
        settings=Settings(queue_url="https://sqs.invalid/q.fifo", ledger_table="Ledger"),
        sweeps=parse_sweeps([SWEEP]),
        dynamodb=client,
        sqs=client,
        sleep=clock.advance,
    )
    context = client.context = FakeContext(clock, timeout_seconds=MARGIN + 0.05)
    message = {"MessageId": "m-1", "ReceiptHandle": "h-1", "Body": body()}
    event = sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:scavenger.fifo")

    response = handle(event, context, runtime)

    assert response["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    assert client.time_left[0] >= MARGIN  # the record was taken in time
    assert client.time_left[0] - MARGIN < control_floor(MARGIN)  # then inside the floor
    assert len(client.time_left) == 1, f"retried with {client.time_left[1:]} s left"
