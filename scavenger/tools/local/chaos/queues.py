"""Driving a run to completion, and reading what the queues hold at its end.

The recovery is what an operator would do: redrive the DLQ's segment messages
(poison stays), then run the fleet again, until the ledger says the run is done
and the DLQ holds no segment message. It moves messages with the runtime's DLQ
adapter (:mod:`scavenger.dlq`) alone: chaos needs nothing of the operator layer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scavenger.dlq import DeadLetter, DeadLetterQueue
from scavenger.ledger import Ledger
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.tools.local.fleet import FleetStats

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_RECOVERY_ROUNDS = 6
REDRIVE_VISIBILITY_SECONDS = 60
REDRIVE_ATTEMPTS = 5


@dataclass(frozen=True)
class Recovery:
    """What driving the run to completion took."""

    rounds: int
    redriven: int
    invocations: int


def recover(
    ledger: Ledger,
    run_id: str,
    dlq: DeadLetterQueue,
    queue_url: str,
    drain: Callable[[], FleetStats],
) -> Recovery:
    """Redrive and ``drain`` (the fleet, without faults) until the run is done."""
    rounds = redriven = invocations = 0
    while rounds < MAX_RECOVERY_ROUNDS:
        record = ledger.get_run(run_id)
        if record is not None and record.status == "done" and not dlq_letters(dlq)[0]:
            break
        rounds += 1
        redriven += redrive(dlq, queue_url)
        invocations += drain().invocations
    return Recovery(rounds, redriven, invocations)


def redrive(dlq: DeadLetterQueue, queue_url: str) -> int:
    """The DLQ's segment messages back on the queue, each sent before it is deleted
    (invariant 3); poison stays, and so does the rest of its group (a group keeps its
    order). How many moved."""
    retry = RetryPolicy(NoDeadline(), max_attempts=REDRIVE_ATTEMPTS)
    moved = 0
    left: list[DeadLetter] = []
    blocked: set[str] = set()
    try:
        for batch in dlq.receive_all(None, REDRIVE_VISIBILITY_SECONDS):
            for letter in batch:
                group = letter.group_id or letter.message_id
                if letter.segment is None or group in blocked:
                    blocked.add(group)
                    left.append(letter)
                    continue
                retry.call(functools.partial(dlq.send_back, letter, queue_url), "SendMessage")
                retry.call(functools.partial(dlq.delete, letter), "DeleteMessage")
                moved += 1
    finally:
        dlq.restore(left)
    return moved


def dead_letters(sqs: SQSClient, url: str) -> DeadLetterQueue:
    return DeadLetterQueue(sqs, url)


def dlq_letters(dlq: DeadLetterQueue) -> tuple[int, list[str]]:
    """The DLQ's segment messages (how many), and the bodies of the others."""
    letters = dlq.peek(None)
    segments = sum(1 for letter in letters if letter.segment is not None)
    return segments, [letter.body for letter in letters if letter.segment is None]


def queue_count(sqs: SQSClient, url: str) -> int:
    """Messages on the queue: visible, in flight and delayed."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())
