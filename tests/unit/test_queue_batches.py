"""SendMessageBatch entries that fail are sent again through the retry policy,
after a wait, and never silently dropped. Stubbed client, no network."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from scavenger.message import SegmentMessage
from scavenger.queue import ENTRY_ATTEMPTS, SegmentQueue, SendFailed
from scavenger.retry import NoDeadline, RetryPolicy

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"


BASE = SegmentMessage(
    "20261123T020000Z-3f9c", "stale", "Workers", 0, 4, datetime(2026, 11, 21, 2, tzinfo=UTC)
)


def message(segment: int) -> SegmentMessage:
    return dataclasses.replace(BASE, segment=segment)


def failed(entry_id: str, sender_fault: bool = False) -> dict[str, object]:
    return {"Id": entry_id, "SenderFault": sender_fault, "Code": "InternalError"}


@pytest.fixture
def sqs():
    client = boto3.client("sqs", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def test_failed_entries_are_sent_again_after_a_wait(sqs):
    client, stubber = sqs
    sleeps: list[float] = []
    stubber.add_response(
        "send_message_batch",
        {
            "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
            "Failed": [failed("1")],
        },
    )
    stubber.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "x"}], "Failed": []},
    )
    queue = SegmentQueue(client, QUEUE, RetryPolicy(NoDeadline(), sleep=sleeps.append))

    queue.send_all([message(0), message(1)])

    stubber.assert_no_pending_responses()
    assert len(sleeps) == 1 and sleeps[0] > 0


def test_entries_that_keep_failing_are_named_after_the_last_attempt(sqs):
    client, stubber = sqs
    sleeps: list[float] = []
    for _ in range(ENTRY_ATTEMPTS):
        stubber.add_response("send_message_batch", {"Successful": [], "Failed": [failed("0")]})
    queue = SegmentQueue(client, QUEUE, RetryPolicy(NoDeadline(), sleep=sleeps.append))

    with pytest.raises(SendFailed) as failure:
        queue.send_all([message(2)])

    assert failure.value.segments == [2]
    assert len(sleeps) == ENTRY_ATTEMPTS - 1
    stubber.assert_no_pending_responses()


def test_a_sender_fault_is_not_sent_again(sqs):
    client, stubber = sqs
    stubber.add_response(
        "send_message_batch", {"Successful": [], "Failed": [failed("0", sender_fault=True)]}
    )
    queue = SegmentQueue(client, QUEUE, RetryPolicy(NoDeadline(), sleep=lambda s: None))

    with pytest.raises(SendFailed) as failure:
        queue.send_all([message(3)])

    assert failure.value.segments == [3]
    stubber.assert_no_pending_responses()
