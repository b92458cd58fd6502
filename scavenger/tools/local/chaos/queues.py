"""Driving a run to completion, and reading what the queues hold at its end.

The recovery is what an operator would do: redrive the DLQ's segment messages
(poison stays), then run the fleet again, until the ledger says the run is done
and the DLQ holds no segment message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scavenger.dlq import DeadLetterQueue
from scavenger.ledger import Ledger
from scavenger.tools.local.fleet import FleetStats
from scavenger.tools.ops.dlq import Redriver

MAX_RECOVERY_ROUNDS = 6


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
        redriven += Redriver(dlq, queue_url).run(max_messages=None, dry_run=False).moved
        invocations += drain().invocations
    return Recovery(rounds, redriven, invocations)


def dead_letters(sqs: Any, url: str) -> DeadLetterQueue:
    return DeadLetterQueue(sqs, url)


def dlq_letters(dlq: DeadLetterQueue) -> tuple[int, list[str]]:
    """The DLQ's segment messages (how many), and the bodies of the others."""
    letters = dlq.peek(None)
    segments = sum(1 for letter in letters if letter.segment is not None)
    return segments, [letter.body for letter in letters if letter.segment is None]


def queue_count(sqs: Any, url: str) -> int:
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
