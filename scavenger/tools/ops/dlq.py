"""The operator's DLQ workflows: list it with each segment's ledger state, and
redrive it losing nothing (the SQS calls are :mod:`scavenger.dlq`'s).

Redrive re-sends each message to the source queue (same body and
MessageGroupId, a deduplication id derived from the DLQ message id) and only
then deletes it from the DLQ. An interruption between the two leaves the
message in both queues: the ledger drops the duplicate, and a rerun sends it
again under the same deduplication id and deletes it. A message whose send
fails stays in the DLQ, and so do the later messages of its group, so a
segment's messages never overtake each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from scavenger.dlq import DeadLetter, DeadLetterQueue, queue_arn
from scavenger.errors import FatalError, RetryableError, ScavengerError, error_code
from scavenger.ledger import Ledger
from scavenger.records import SegmentState
from scavenger.retry import NoDeadline, RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

REDRIVE_VISIBILITY_SECONDS = 60
SEND_ATTEMPTS = 5

# What an endpoint without StartMessageMoveTask answers (emulators), besides 404/5xx.
UNSUPPORTED_CODES = frozenset(
    {"InvalidAction", "UnknownOperationException", "NotImplemented", "InternalFailure"}
)
MOVE_TASK_RUNNING = frozenset({"RUNNING", "CANCELLING"})


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
            stale=state.drops(max(hops)),
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
        moving = _Pass(report)
        try:
            for batch in self.dlq.receive_all(max_messages, REDRIVE_VISIBILITY_SECONDS):
                for letter in batch:
                    self._move_one(letter, moving)
                    self.on_message()
        finally:
            report.errors.extend(self.dlq.restore(moving.left))

    def _move_one(self, letter: DeadLetter, moving: _Pass) -> None:
        report = moving.report
        if moving.group(letter) in moving.blocked:
            report.held_back += 1
            moving.leave(letter)
            return
        if letter.segment is None:
            report.invalid += 1
            moving.leave(letter, f"not a segment message ({letter.invalid})", block=True)
            return
        try:
            self.retry.call(lambda: self.dlq.send_back(letter, self.queue_url), "SendMessage")
        except (FatalError, RetryableError) as exc:
            report.failed += 1
            moving.leave(letter, f"not sent: {exc}", block=True)
            return
        try:
            self.retry.call(lambda: self.dlq.delete(letter), "DeleteMessage")
        except (FatalError, RetryableError) as exc:
            report.sent_not_deleted += 1
            moving.leave(letter, f"sent, not deleted from the DLQ: {exc}")
            return
        report.moved += 1
        report.messages.append(letter.to_json())


@dataclass
class _Pass:
    """One client-side redrive: its report, the messages it leaves in the DLQ and the
    groups held back behind them (a segment's messages never overtake each other)."""

    report: RedriveReport
    left: list[DeadLetter] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)

    @staticmethod
    def group(letter: DeadLetter) -> str:
        return letter.group_id or letter.message_id

    def leave(self, letter: DeadLetter, error: str | None = None, *, block: bool = False) -> None:
        """Leave ``letter`` in the DLQ, saying why if it is an error; ``block``: and hold
        back the rest of its group."""
        if error is not None:
            self.report.errors.append(f"{letter.message_id}: {error}")
        if block:
            self.blocked.add(self.group(letter))
        self.left.append(letter)


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


class NativeMove:
    """SQS's own DLQ redrive, where the endpoint has it (AWS does; emulators do not)."""

    def __init__(self, sqs: SQSClient, dlq_url: str, queue_url: str, endpoint: str | None = None):
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
