"""The dead-letter queue adapter: receive, restore, send back and delete DLQ
messages over an injected SQS client, and find a queue's DLQ from its redrive policy.

Receiving holds messages (a short visibility timeout) rather than consuming them;
:meth:`DeadLetterQueue.holding` makes them visible again at once when the caller is
done (a FIFO queue hides the rest of a group while its head is received, so restoring
each message as soon as it is seen would show the same heads over and over). If the
caller is killed, SQS restores them itself when the timeout runs out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from scavenger.errors import InvalidMessage, ScavengerError, error_code
from scavenger.message import SegmentMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

PEEK_VISIBILITY_SECONDS = 30
RECEIVE_BATCH = 10
# Short polls may come back empty while messages remain (or sit behind a held group).
EMPTY_RECEIVES = 3
MAX_BODY_SHOWN = 200


def redrive_deduplication_id(message_id: str) -> str:
    """Fresh per DLQ message (never the original's, which SQS may still remember),
    and the same on every retry of that message (so SQS drops a re-send)."""
    return hashlib.sha256(f"redrive\x1f{message_id}".encode()).hexdigest()


def epoch_millis_to_iso(value: str | None) -> str | None:
    if not value:
        return None
    try:
        instant = datetime.fromtimestamp(int(value) / 1000, UTC)
    except ValueError:
        return None
    return instant.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class DeadLetter:
    """One received DLQ message, parsed as a segment message where it is one."""

    message_id: str
    receipt_handle: str
    body: str
    group_id: str | None
    receive_count: int
    sent_at: str | None
    first_received_at: str | None
    message_attributes: dict[str, Any] = field(default_factory=dict)
    segment: SegmentMessage | None = None
    invalid: str | None = None

    @classmethod
    def from_sqs(cls, message: Any) -> DeadLetter:
        attributes = message.get("Attributes", {})
        segment: SegmentMessage | None = None
        invalid: str | None = None
        try:
            segment = SegmentMessage.parse(message.get("Body", ""))
        except InvalidMessage as exc:
            invalid = str(exc)
        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message.get("Body", ""),
            group_id=attributes.get("MessageGroupId"),
            # Receives before this one: our own receive is not the worker's attempt.
            receive_count=max(0, int(attributes.get("ApproximateReceiveCount", "1")) - 1),
            sent_at=epoch_millis_to_iso(attributes.get("SentTimestamp")),
            first_received_at=epoch_millis_to_iso(
                attributes.get("ApproximateFirstReceiveTimestamp")
            ),
            message_attributes=_sendable_attributes(message.get("MessageAttributes", {})),
            segment=segment,
            invalid=invalid,
        )

    @property
    def key(self) -> tuple[str, int] | None:
        return (self.segment.run_id, self.segment.segment) if self.segment else None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "group_id": self.group_id,
            "receive_count": self.receive_count,
            "sent_at": self.sent_at,
            "first_received_at": self.first_received_at,
            "valid": self.segment is not None,
        }
        if self.segment is not None:
            data |= {
                "run_id": self.segment.run_id,
                "sweep": self.segment.sweep,
                "table": self.segment.table,
                "segment": self.segment.segment,
                "hop": self.segment.hop,
            }
        else:
            data |= {"invalid": self.invalid, "body": self.body[:MAX_BODY_SHOWN]}
        return data


def _sendable_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as SendMessage takes them (receive adds empty list fields)."""
    sendable: dict[str, Any] = {}
    for name, value in attributes.items():
        kept = {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        if "DataType" in kept:
            sendable[name] = kept
    return sendable


class DeadLetterQueue:
    """Receive, restore, send back and delete on the DLQ, over an injected SQS client."""

    def __init__(self, sqs: SQSClient, url: str):
        self.sqs = sqs
        self.url = url

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) as SQS estimates them."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes.get("ApproximateNumberOfMessages", "0")),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
        )

    def receive(self, count: int, visibility_seconds: int) -> list[DeadLetter]:
        response = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(RECEIVE_BATCH, count)),
            VisibilityTimeout=visibility_seconds,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [DeadLetter.from_sqs(message) for message in response.get("Messages", [])]

    def receive_all(self, limit: int | None, visibility_seconds: int) -> Iterator[list[DeadLetter]]:
        """Batches until the DLQ gives no more (or ``limit`` messages were received)."""
        received = 0
        empty = 0
        while limit is None or received < limit:
            wanted = RECEIVE_BATCH if limit is None else min(RECEIVE_BATCH, limit - received)
            batch = self.receive(wanted, visibility_seconds)
            if not batch:
                empty += 1
                if empty >= EMPTY_RECEIVES or self.counts()[0] == 0:
                    return
                continue
            empty = 0
            received += len(batch)
            yield batch

    def restore(self, letters: list[DeadLetter]) -> list[str]:
        """Make messages visible again at once; the errors, if any (best effort: SQS
        restores them anyway when their visibility timeout runs out)."""
        errors: list[str] = []
        for start in range(0, len(letters), RECEIVE_BATCH):
            chunk = letters[start : start + RECEIVE_BATCH]
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {"Id": str(index), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for index, letter in enumerate(chunk)
            ]
            try:
                response = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.url, Entries=entries
                )
            except (ClientError, BotoCoreError) as exc:
                errors.append(f"ChangeMessageVisibilityBatch: {exc}")
                continue
            errors.extend(
                f"{chunk[int(failure['Id'])].message_id}: {failure.get('Code')}"
                for failure in response.get("Failed", [])
            )
        return errors

    def delete(self, letter: DeadLetter) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=letter.receipt_handle)

    def send_back(self, letter: DeadLetter, queue_url: str) -> None:
        """Re-send to ``queue_url`` with the same body, group and attributes, under a
        deduplication id derived from the DLQ message id (a re-send is dropped)."""
        request: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": letter.body}
        if letter.group_id is not None:
            request["MessageGroupId"] = letter.group_id
            request["MessageDeduplicationId"] = redrive_deduplication_id(letter.message_id)
        if letter.message_attributes:
            request["MessageAttributes"] = letter.message_attributes
        self.sqs.send_message(**request)

    @contextlib.contextmanager
    def holding(
        self, limit: int | None, visibility_seconds: int = PEEK_VISIBILITY_SECONDS
    ) -> Iterator[list[DeadLetter]]:
        """Receive up to ``limit`` messages, hold them while the caller looks, restore."""
        held: list[DeadLetter] = []
        try:
            for batch in self.receive_all(limit, visibility_seconds):
                held.extend(batch)
            yield held
        finally:
            self.restore(held)

    def peek(self, limit: int | None) -> list[DeadLetter]:
        """The DLQ's messages, left in the DLQ and visible again when this returns."""
        with self.holding(limit) as letters:
            return list(letters)


def queue_arn(sqs: SQSClient, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return arn


def dlq_url_from_policy(sqs: SQSClient, queue_url: str, policy: str | None) -> str | None:
    """The DLQ URL a RedrivePolicy attribute names (None without a policy)."""
    try:
        if not policy:
            return None
        arn = str(json.loads(policy)["deadLetterTargetArn"])
        parts = arn.split(":")
        if len(parts) != 6:
            raise ScavengerError(f"queue {queue_url}: redrive policy names {arn!r}, not a queue")
        url: str = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])[
            "QueueUrl"
        ]
        return url
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise ScavengerError(f"queue {queue_url}: {error_code(exc)}: {message}") from exc
    except (KeyError, ValueError) as exc:
        raise ScavengerError(f"queue {queue_url}: unreadable redrive policy ({exc})") from exc


def dlq_from_redrive_policy(sqs: SQSClient, queue_url: str) -> str | None:
    """The queue's dead-letter queue URL, from its RedrivePolicy (None without one)."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise ScavengerError(f"queue {queue_url}: {error_code(exc)}: {message}") from exc
    return dlq_url_from_policy(
        sqs, queue_url, attributes.get("Attributes", {}).get("RedrivePolicy")
    )
