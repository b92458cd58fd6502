"""The dead-letter queue: list it without consuming it, and redrive it losing nothing.

Listing receives the messages with a short visibility timeout, holds them until
the listing is complete, then makes them visible again at once (a FIFO queue
hides the rest of a group while its head is received, so restoring each
message as soon as it is seen would show the same heads over and over). If the
listing is killed, SQS restores them itself when the timeout runs out.

Redrive re-sends each message to the source queue (same body and
MessageGroupId, a deduplication id derived from the DLQ message id) and only
then deletes it from the DLQ. An interruption between the two leaves the
message in both queues: the ledger drops the duplicate, and a rerun sends it
again under the same deduplication id and deletes it. A message whose send
fails stays in the DLQ, and so do the later messages of its group, so a
segment's messages never overtake each other.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scavenger.errors import FatalError, InvalidMessage, RetryableError, ScavengerError, error_code
from scavenger.ledger import Ledger
from scavenger.message import SegmentMessage
from scavenger.ops.output import epoch_millis_to_iso
from scavenger.records import SegmentState
from scavenger.retry import NoDeadline, RetryPolicy

PEEK_VISIBILITY_SECONDS = 30
REDRIVE_VISIBILITY_SECONDS = 60
RECEIVE_BATCH = 10
# Short polls may come back empty while messages remain (or sit behind a held group).
EMPTY_RECEIVES = 3
SEND_ATTEMPTS = 5
MAX_BODY_SHOWN = 200

# What an endpoint without StartMessageMoveTask answers (emulators), besides 404/5xx.
UNSUPPORTED_CODES = frozenset(
    {"InvalidAction", "UnknownOperationException", "NotImplemented", "InternalFailure"}
)
MOVE_TASK_RUNNING = frozenset({"RUNNING", "CANCELLING"})


def redrive_deduplication_id(message_id: str) -> str:
    """Fresh per DLQ message (never the original's, which SQS may still remember),
    and the same on every retry of that message (so SQS drops a re-send)."""
    return hashlib.sha256(f"redrive\x1f{message_id}".encode()).hexdigest()


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
    def from_sqs(cls, message: dict[str, Any]) -> DeadLetter:
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
    """Receive, restore and delete on the DLQ, over an injected SQS client."""

    def __init__(self, sqs: Any, url: str):
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
            entries = [
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


@dataclass(frozen=True)
class LedgerView:
    """What the ledger says about a DLQ message's segment."""

    status: str | None
    hop: int | None
    last_error: str | None
    stale: bool
    first_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ledger_status": self.status,
            "ledger_hop": self.hop,
            "first_error": self.first_error,
            "last_error": self.last_error,
            "stale": self.stale,
        }


def ledger_views(letters: list[DeadLetter], ledger: Ledger) -> dict[tuple[str, int], LedgerView]:
    """Per DLQ segment: its ledger state, and whether redriving it would be dropped
    (the segment is done, or has moved to a later hop)."""
    views: dict[tuple[str, int], LedgerView] = {}
    for letter in letters:
        key = letter.key
        if key is None or key in views:
            continue
        state: SegmentState | None = ledger.get_segment(*key)
        if state is None:
            views[key] = LedgerView(None, None, None, stale=True)
            continue
        hops = [other.segment.hop for other in letters if other.key == key and other.segment]
        views[key] = LedgerView(
            status=state.status,
            hop=state.hop,
            last_error=state.last_error,
            first_error=state.first_error,
            stale=state.status == "done" or max(hops) < state.hop,
        )
    return views


@dataclass
class RedriveReport:
    dry_run: bool
    moved: int = 0
    failed: int = 0
    sent_not_deleted: int = 0
    invalid: int = 0
    held_back: int = 0
    would_move: int = 0
    remaining: int | None = None
    errors: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.failed or self.sent_not_deleted)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "moved": self.moved,
            "failed": self.failed,
            "sent_not_deleted": self.sent_not_deleted,
            "invalid": self.invalid,
            "held_back": self.held_back,
            "would_move": self.would_move,
            "remaining": self.remaining,
            "errors": self.errors,
            "messages": self.messages,
        }


class Redriver:
    """Client-side redrive: send to the source queue first, then delete from the DLQ."""

    def __init__(
        self,
        dlq: DeadLetterQueue,
        queue_url: str,
        *,
        retry: RetryPolicy | None = None,
        on_message: Callable[[], None] | None = None,
    ):
        self.dlq = dlq
        self.queue_url = queue_url
        self.retry = retry or RetryPolicy(NoDeadline(), max_attempts=SEND_ATTEMPTS)
        self.on_message = on_message or (lambda: None)

    def run(self, *, max_messages: int | None, dry_run: bool) -> RedriveReport:
        report = RedriveReport(dry_run=dry_run)
        if dry_run:
            for letter in self.dlq.peek(max_messages):
                report.messages.append(letter.to_json())
                if letter.segment is None:
                    report.invalid += 1
                else:
                    report.would_move += 1
        else:
            self._move(max_messages, report)
        report.remaining = sum(self.dlq.counts())
        return report

    def _move(self, max_messages: int | None, report: RedriveReport) -> None:
        # Messages left in the DLQ stay received (hidden) until the end, so they are
        # not received again, and their groups stay blocked behind them.
        left: list[DeadLetter] = []
        blocked: set[str] = set()
        try:
            for batch in self.dlq.receive_all(max_messages, REDRIVE_VISIBILITY_SECONDS):
                for letter in batch:
                    self._move_one(letter, report, left, blocked)
                    self.on_message()
        finally:
            report.errors.extend(self.dlq.restore(left))

    def _move_one(
        self,
        letter: DeadLetter,
        report: RedriveReport,
        left: list[DeadLetter],
        blocked: set[str],
    ) -> None:
        group = letter.group_id or letter.message_id
        if group in blocked:
            report.held_back += 1
            left.append(letter)
            return
        if letter.segment is None:
            report.invalid += 1
            report.errors.append(f"{letter.message_id}: not a segment message ({letter.invalid})")
            blocked.add(group)
            left.append(letter)
            return
        try:
            self.retry.call(lambda: self._send(letter), "SendMessage")
        except (FatalError, RetryableError) as exc:
            report.failed += 1
            report.errors.append(f"{letter.message_id}: not sent: {exc}")
            blocked.add(group)
            left.append(letter)
            return
        try:
            self.retry.call(lambda: self.dlq.delete(letter), "DeleteMessage")
        except (FatalError, RetryableError) as exc:
            report.sent_not_deleted += 1
            report.errors.append(f"{letter.message_id}: sent, not deleted from the DLQ: {exc}")
            left.append(letter)
            return
        report.moved += 1
        report.messages.append(letter.to_json())

    def _send(self, letter: DeadLetter) -> None:
        request: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": letter.body}
        if letter.group_id is not None:
            request["MessageGroupId"] = letter.group_id
            request["MessageDeduplicationId"] = redrive_deduplication_id(letter.message_id)
        if letter.message_attributes:
            request["MessageAttributes"] = letter.message_attributes
        self.dlq.sqs.send_message(**request)


# -- native redrive (SQS StartMessageMoveTask) -------------------------------------------


@dataclass(frozen=True)
class MoveTask:
    status: str
    moved: int
    to_move: int | None
    failure_reason: str | None = None

    @property
    def running(self) -> bool:
        return self.status in MOVE_TASK_RUNNING

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "moved": self.moved,
            "to_move": self.to_move,
            "failure_reason": self.failure_reason,
        }


def queue_arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return arn


class NativeMove:
    """SQS's own DLQ redrive, where the endpoint has it (AWS does; emulators do not)."""

    def __init__(self, sqs: Any, dlq_url: str, queue_url: str, endpoint: str | None = None):
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.queue_url = queue_url
        self.endpoint = endpoint or "this endpoint"
        self._source_arn: str | None = None

    @property
    def source_arn(self) -> str:
        if self._source_arn is None:
            self._source_arn = queue_arn(self.sqs, self.dlq_url)
        return self._source_arn

    def start(self) -> str:
        source, destination = self.source_arn, queue_arn(self.sqs, self.queue_url)
        try:
            response = self.sqs.start_message_move_task(
                SourceArn=source, DestinationArn=destination
            )
        except NotImplementedError as exc:  # moto, in-process
            raise self._unsupported("not implemented") from exc
        except ClientError as exc:
            code = error_code(exc)
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in UNSUPPORTED_CODES or status in (404, 501) or status >= 500:
                raise self._unsupported(code or str(status)) from exc
            message = exc.response.get("Error", {}).get("Message", "")
            raise ScavengerError(f"--native: StartMessageMoveTask: {code}: {message}") from exc
        handle: str = response.get("TaskHandle", "")
        return handle

    def progress(self) -> MoveTask:
        results = self.sqs.list_message_move_tasks(SourceArn=self.source_arn, MaxResults=1).get(
            "Results", []
        )
        if not results:
            return MoveTask(status="UNKNOWN", moved=0, to_move=None)
        task = results[0]
        to_move = task.get("ApproximateNumberOfMessagesToMove")
        return MoveTask(
            status=str(task.get("Status", "UNKNOWN")),
            moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
            to_move=int(to_move) if to_move is not None else None,
            failure_reason=task.get("FailureReason"),
        )

    def wait(
        self,
        *,
        poll_seconds: float,
        sleep: Callable[[float], None],
        on_progress: Callable[[MoveTask], None],
    ) -> MoveTask:
        while True:
            task = self.progress()
            on_progress(task)
            if not task.running:
                return task
            sleep(poll_seconds)

    def _unsupported(self, detail: str) -> ScavengerError:
        return ScavengerError(
            f"--native: {self.endpoint} does not support StartMessageMoveTask ({detail}); "
            "run redrive without --native to move the messages client-side"
        )
