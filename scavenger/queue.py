"""The segment queue: FIFO sends that never silently drop a message."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scavenger.errors import FatalError, RetryableError, ScavengerError, Unprocessed
from scavenger.message import Outgoing, SegmentMessage
from scavenger.retry import NoDeadline, RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        SendMessageBatchRequestEntryTypeDef,
        SendMessageBatchResultTypeDef,
    )

BATCH_SIZE = 10
ENTRY_ATTEMPTS = 8


class SendFailed(ScavengerError):
    """Some messages could not be sent; ``segments`` names every one of them."""

    def __init__(self, segments: list[int], reason: str):
        super().__init__(f"could not send segments {segments}: {reason}")
        self.segments = segments
        self.reason = reason


class SegmentQueue:
    def __init__(self, client: SQSClient, queue_url: str, retry: RetryPolicy | None = None):
        self.client = client
        self.queue_url = queue_url
        self.retry = retry or RetryPolicy(NoDeadline())
        self.entries_retry = self.retry.for_unprocessed(ENTRY_ATTEMPTS)

    def send(self, message: SegmentMessage, nonce: str | None = None) -> None:
        self.retry.call(
            lambda: self.client.send_message(
                QueueUrl=self.queue_url,
                MessageBody=message.to_json(),
                MessageGroupId=message.group_id,
                MessageDeduplicationId=message.deduplication_id(nonce),
            ),
            "SendMessage",
        )

    def send_all(self, messages: Sequence[Outgoing], nonce: str | None = None) -> None:
        """SendMessageBatch in tens; failed entries are retried, never dropped. Every
        batch is tried; SendFailed then names all the segments that were not sent."""
        unsent: list[int] = []
        reasons: list[str] = []
        for start in range(0, len(messages), BATCH_SIZE):
            batch = list(messages[start : start + BATCH_SIZE])
            try:
                self._send_batch(batch, nonce)
            except SendFailed as exc:
                unsent += exc.segments
                reasons.append(exc.reason)
            except (RetryableError, FatalError) as exc:
                unsent += [message.segment for message in batch]
                reasons.append(str(exc))
        if unsent:
            raise SendFailed(sorted(unsent), reasons[0])

    def _send_batch(self, batch: list[Outgoing], nonce: str | None) -> None:
        pending = {str(index): message for index, message in enumerate(batch)}
        reason = ""

        def send_pending() -> None:
            nonlocal reason
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": entry_id,
                    "MessageBody": message.to_json(),
                    "MessageGroupId": message.group_id,
                    "MessageDeduplicationId": message.deduplication_id(nonce),
                }
                for entry_id, message in pending.items()
            ]
            response = self._send_entries(entries)
            for success in response.get("Successful", []):
                pending.pop(success["Id"], None)
            failures = response.get("Failed", [])
            if not pending:
                return
            reason = "; ".join(f"{f.get('Code')}: {f.get('Message', '')}" for f in failures)
            if not any(f.get("SenderFault") for f in failures):
                raise Unprocessed(reason)

        with contextlib.suppress(Unprocessed):  # SendFailed below names what is left
            self.entries_retry.call(send_pending, "SendMessageBatch.entries")
        if pending:
            raise SendFailed(sorted(m.segment for m in pending.values()), reason or "no response")

    def _send_entries(
        self, entries: list[SendMessageBatchRequestEntryTypeDef]
    ) -> SendMessageBatchResultTypeDef:
        return self.retry.call(
            lambda: self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries),
            "SendMessageBatch",
        )
