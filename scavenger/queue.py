"""The segment queue: FIFO sends that never silently drop a message."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from scavenger.errors import FatalError, RetryableError, ScavengerError
from scavenger.message import Outgoing, SegmentMessage
from scavenger.retry import NoDeadline, RetryPolicy

BATCH_SIZE = 10
ENTRY_ATTEMPTS = 8


class SendFailed(ScavengerError):
    """Some messages could not be sent; ``segments`` names every one of them."""

    def __init__(self, segments: list[int], reason: str):
        super().__init__(f"could not send segments {segments}: {reason}")
        self.segments = segments
        self.reason = reason


class SegmentQueue:
    def __init__(self, client: Any, queue_url: str, retry: RetryPolicy | None = None):
        self.client = client
        self.queue_url = queue_url
        self.retry = retry or RetryPolicy(NoDeadline())

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
        for attempt in range(ENTRY_ATTEMPTS):
            entries = [
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
            fatal = [f for f in failures if f.get("SenderFault")]
            reason = "; ".join(f"{f.get('Code')}: {f.get('Message', '')}" for f in failures)
            if fatal:
                break
            time.sleep(min(2.0, 0.05 * 2**attempt))
        raise SendFailed(sorted(m.segment for m in pending.values()), reason or "no response")

    def _send_entries(self, entries: list[dict[str, str]]) -> Any:
        return self.retry.call(
            lambda: self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries),
            "SendMessageBatch",
        )
