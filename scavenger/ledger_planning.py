"""The planner's ledger writes: the run item, and the pending segment and shard items.

Everything here is written before the messages that refer to it, and may be written
again by a redelivery: puts of pending items are idempotent, the run item is put once.
A large run is planned in shards (``SHARD#0000000`` items), each written by its own
plan-shard message (scavenger.plan.plan_shard).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from scavenger.errors import ConditionFailed, Unprocessed
from scavenger.ledger_store import (
    RUN_PART,
    LedgerStore,
    cursor_text,
    expires_at,
    key,
    now_iso,
    number,
    segment_part,
    string,
)
from scavenger.records import SEGMENT_PREFIX, Counts, RunRecord
from scavenger.schema import TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

SHARD_PREFIX = "SHARD#"
# BatchWriteItem takes 25 requests, BatchGetItem 100 keys.
WRITE_BATCH = 25
READ_BATCH = 100


# What unplanned_segments reads of a segment item.
STATUS_AND_HOP = {
    "ProjectionExpression": "part, #status, #hop",
    "ExpressionAttributeNames": {"#status": "status", "#hop": "hop"},
}


def shard_part(first: int) -> str:
    return f"{SHARD_PREFIX}{first:07d}"


class PlanningLedger(LedgerStore):
    """Writes a run's items at planning time; the sweep's progress is Ledger's."""

    def create_run(self, run: RunRecord, shards: Sequence[tuple[int, int]] = ()) -> None:
        """Write one pending item per segment, then the run item (before any message).

        A planner that dies part-way leaves no run item, so the sweep is not blocked.
        With ``shards`` (first segment, count), one pending item per shard instead:
        each shard's planner writes its segments (create_segments).
        """
        expires = expires_at()
        if shards:
            self._batch_put(
                self._shard_item(run.run_id, first, count, expires) for first, count in shards
            )
        else:
            self._batch_put(
                self._segment_item(run.run_id, segment, expires)
                for segment in range(run.total_segments)
            )
        run_item = {
            **key(run.run_id, RUN_PART),
            "sweep": string(run.sweep),
            "table": string(run.table),
            "total_segments": number(run.total_segments),
            "cutoff": string(run.cutoff),
            "dry_run": {"BOOL": run.dry_run},
            "created_at": string(run.created_at),
            "status": string(run.status),
            TTL_ATTRIBUTE: expires,
        }
        # Run ids are new and random: if the item is there already, an earlier attempt
        # of this very call succeeded before its response was lost.
        with contextlib.suppress(ConditionFailed):
            self._call(
                "PutItem",
                lambda: self.client.put_item(
                    TableName=self.table_name,
                    Item=run_item,
                    ConditionExpression="attribute_not_exists(run_id)",
                ),
            )

    def create_segments(self, run_id: str, segments: Sequence[int]) -> None:
        """Write pending items for ``segments`` (a shard's planner, before their messages)."""
        expires = expires_at()
        self._batch_put(self._segment_item(run_id, segment, expires) for segment in segments)

    def pending_shards(self, run_id: str) -> list[tuple[int, int, str]]:
        """The run's shards whose segments are not all written and sent yet:
        (first, count, updated_at)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "run_id = :run AND begins_with(part, :shard)",
            "FilterExpression": "#status = :pending",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":run": string(run_id),
                ":shard": string(SHARD_PREFIX),
                ":pending": string("pending"),
            },
        }
        return [
            (int(item["first"]["N"]), int(item["count"]["N"]), item["updated_at"]["S"])
            for page in self._pages("Query", request)
            for item in page.get("Items", [])
        ]

    def mark_shard_planned(self, run_id: str, first: int) -> None:
        """Every segment of the shard is written and its message sent."""
        self._update_key(
            run_id,
            shard_part(first),
            "SET #status = :planned, #updated_at = :now",
            "attribute_exists(run_id)",
            {":planned": string("planned"), ":now": string(now_iso())},
        )

    def unplanned_segments(self, run_id: str, segments: range) -> tuple[list[int], list[int]]:
        """Of ``segments``: those with no ledger item yet, and those still pending at
        hop 0 (written, their first message maybe not sent)."""
        found: dict[int, dict[str, Any]] = {}
        keys = [key(run_id, segment_part(n)) for n in segments]
        for start in range(0, len(keys), READ_BATCH):
            for item in self._batch_get(keys[start : start + READ_BATCH], 20, STATUS_AND_HOP):
                found[int(item["part"]["S"].removeprefix(SEGMENT_PREFIX))] = item
        missing = [n for n in segments if n not in found]
        unstarted = [
            n
            for n, item in found.items()
            if item["status"]["S"] == "pending" and item["hop"]["N"] == "0"
        ]
        return missing, sorted(unstarted)

    def _segment_item(self, run_id: str, segment: int, expires: dict[str, str]) -> dict[str, Any]:
        item: dict[str, Any] = {
            **key(run_id, segment_part(segment)),
            "status": string("pending"),
            "hop": number(0),
            "cursor": string(cursor_text(None)),
            "checkpoints": number(0),
            "updated_at": string(now_iso()),
            TTL_ATTRIBUTE: expires,
        }
        item.update({name: number(0) for name in Counts().as_dict()})
        return item

    def _shard_item(
        self, run_id: str, first: int, count: int, expires: dict[str, str]
    ) -> dict[str, Any]:
        return {
            **key(run_id, shard_part(first)),
            "status": string("pending"),
            "first": number(first),
            "count": number(count),
            "updated_at": string(now_iso()),
            TTL_ATTRIBUTE: expires,
        }

    def _batch_put(self, items: Iterable[dict[str, Any]]) -> None:
        batch: list[WriteRequestTypeDef] = []
        for item in items:
            batch.append({"PutRequest": {"Item": item}})
            if len(batch) == WRITE_BATCH:
                self._write_batch(batch)
                batch = []
        if batch:
            self._write_batch(batch)

    def _write_batch(self, requests: list[WriteRequestTypeDef]) -> None:
        pending: dict[str, Any] = {self.table_name: requests}

        def write() -> None:
            nonlocal pending
            response = self._call(
                "BatchWriteItem", lambda: self.client.batch_write_item(RequestItems=pending)
            )
            pending = dict(response.get("UnprocessedItems") or {})
            if pending:
                raise Unprocessed(f"ledger {self.table_name}: batch write left unprocessed items")

        self.retry.for_unprocessed(20).call(write, "ledger.BatchWriteItem.unprocessed")
