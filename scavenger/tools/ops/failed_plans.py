"""The planner's kept failures: scheduled runs that failed after Lambda's retries.

Lambda writes each failed asynchronous invocation of the planner to its on-failure
destination (the planner failure queue) as a record whose ``requestPayload`` is the
original event. ``scavenger plan --from-failed`` replays each event through the planner
and deletes its record only after the replay succeeded; a record whose replay failed (or
that cannot be read) stays, visible again at once, for the next attempt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from scavenger.errors import FatalError, RetryableError, ScavengerError
from scavenger.plan import PlanRequest, PlanResult

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

# Long enough to replay every record of one receive loop before another operator sees them.
RECEIVE_VISIBILITY_SECONDS = 900
RECEIVE_BATCH = 10
# A replay's errors: ours, AWS's, or a bad event (ValueError from PlanRequest.from_event).
REPLAY_ERRORS = (ScavengerError, FatalError, RetryableError, ClientError, BotoCoreError, ValueError)


@dataclass(frozen=True)
class KeptFailure:
    """One record of the on-failure destination, as Lambda writes it."""

    message_id: str
    event: Any
    condition: str
    error: str
    failed_at: str

    @classmethod
    def parse(cls, message_id: str, body: str) -> KeptFailure:
        """Raises ValueError if ``body`` is not a Lambda destination record with an event."""
        try:
            record = json.loads(body)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "requestPayload" not in record:
            raise ValueError("not a Lambda destination record (no requestPayload)")
        context = record.get("requestContext") or {}
        response = record.get("responsePayload") or {}
        return cls(
            message_id=message_id,
            event=record["requestPayload"],
            condition=str(context.get("condition", "")),
            error=str(response.get("errorMessage", "")) if isinstance(response, dict) else "",
            failed_at=str(record.get("timestamp", "")),
        )


@dataclass
class Replay:
    """What became of one kept record."""

    message_id: str
    failure: KeptFailure | None = None
    results: list[PlanResult] = field(default_factory=list)
    error: str = ""
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "message_id": self.message_id,
            "event": failure.event if failure else None,
            "failed_at": failure.failed_at if failure else None,
            "condition": failure.condition if failure else None,
            "original_error": failure.error if failure else None,
            "runs": [result.to_json() for result in self.results],
            "replay_error": self.error or None,
            "deleted": self.deleted,
        }


def receive_all(sqs: SQSClient, queue_url: str) -> list[MessageTypeDef]:
    """Every record now visible, each once, hidden from others while this command runs."""
    received: dict[str, MessageTypeDef] = {}
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=RECEIVE_BATCH,
            VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in received]
        if not fresh:
            return list(received.values())
        for message in fresh:
            received[message["MessageId"]] = message


def replay_kept_failures(
    sqs: SQSClient, queue_url: str, replay: Callable[[PlanRequest], list[PlanResult]]
) -> list[Replay]:
    """Replay every kept record through ``replay``; delete each only after it succeeded.

    A replay succeeds when the planner answers for every sweep of the event without an
    error; a sweep it did not start because a run of it is in progress counts (that run
    exists: the failed invocation got that far, or a later schedule did).
    """
    outcomes: list[Replay] = []
    for message in receive_all(sqs, queue_url):
        outcome = Replay(message["MessageId"])
        outcomes.append(outcome)
        try:
            outcome.failure = KeptFailure.parse(message["MessageId"], message["Body"])
            outcome.results = replay(PlanRequest.from_event(outcome.failure.event))
        except REPLAY_ERRORS as exc:
            outcome.error = str(exc) or type(exc).__name__
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        outcome.deleted = True
    return outcomes
