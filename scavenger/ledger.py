"""The ledger table: the source of truth for where each run and segment stands.

pk ``run_id``, sk ``part``: ``RUN`` for the run, ``SEG#00007`` per segment, and
``SWEEP`` items (pk ``SWEEP#name``) pointing at each sweep's latest run. Every
progress write is a compare-and-set on (hop, checkpoints), so a page is counted
once even when two workers hold the same segment.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from scavenger.errors import ConditionFailed, FatalError, RetryableError, Unprocessed
from scavenger.message import Key, cursor_to_json
from scavenger.observability import logger
from scavenger.records import (
    COUNTERS,
    MAX_ERROR_LENGTH,
    SEGMENT_PREFIX,
    Counts,
    Halt,
    RunRecord,
    SegmentState,
)
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.schema import LEDGER_RETENTION_SECONDS, TTL_ATTRIBUTE

RUN_PART = "RUN"
SWEEP_PART = "SWEEP"
SHARD_PREFIX = "SHARD#"
RETENTION_SECONDS = LEDGER_RETENTION_SECONDS
# How an engine without transactions answers TransactWriteItems (dynalite).
NO_TRANSACTIONS = "UnknownOperationException"

NAMES = {
    "#status": "status",
    "#cursor": "cursor",
    "#hop": "hop",
    "#checkpoints": "checkpoints",
    "#updated_at": "updated_at",
    "#last_error": "last_error",
}


def segment_part(segment: int) -> str:
    return f"{SEGMENT_PREFIX}{segment:05d}"


def shard_part(first: int) -> str:
    return f"{SHARD_PREFIX}{first:07d}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _cursor_text(cursor: Key | None) -> str:
    return json.dumps(cursor_to_json(cursor), sort_keys=True, separators=(",", ":"))


def _increments(counts: Counts) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``counts`` as an ADD clause's terms, their values and names: each counter by its
    own name, each index's write units (an attribute named after the index, which may
    hold any character) through a placeholder."""
    terms: list[str] = []
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    for position, (attribute, value) in enumerate(counts.item_values().items()):
        if attribute in COUNTERS:
            terms.append(f"{attribute} :{attribute}")
            values[f":{attribute}"] = _n(value)
        else:
            names[f"#wu{position}"] = attribute
            terms.append(f"#wu{position} :wu{position}")
            values[f":wu{position}"] = _n(value)
    return ", ".join(terms), values, names


class Ledger:
    """Ledger reads and compare-and-set writes over an injected DynamoDB client."""

    def __init__(self, client: Any, table_name: str, retry: RetryPolicy | None = None):
        self.client = client
        self.table_name = table_name
        self.retry = retry or RetryPolicy(NoDeadline())

    # -- runs -------------------------------------------------------------------------

    def create_run(self, run: RunRecord, shards: Sequence[tuple[int, int]] = ()) -> None:
        """Write one pending item per segment, then the run item (before any message).

        A planner that dies part-way leaves no run item, so the sweep is not blocked.
        With ``shards`` (first segment, count), one pending item per shard instead:
        each shard's planner writes its segments (create_segments).
        """
        expires = _n(int(time.time()) + RETENTION_SECONDS)
        run_item = {
            "run_id": _s(run.run_id),
            "part": _s(RUN_PART),
            "sweep": _s(run.sweep),
            "table": _s(run.table),
            "total_segments": _n(run.total_segments),
            "cutoff": _s(run.cutoff),
            "dry_run": {"BOOL": run.dry_run},
            "created_at": _s(run.created_at),
            "status": _s(run.status),
            TTL_ATTRIBUTE: expires,
        }
        if shards:
            self._batch_put(
                self._shard_item(run.run_id, first, count, expires) for first, count in shards
            )
        else:
            self._batch_put(
                self._segment_item(run.run_id, segment, expires)
                for segment in range(run.total_segments)
            )
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

    def _segment_item(self, run_id: str, segment: int, expires: dict[str, str]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "run_id": _s(run_id),
            "part": _s(segment_part(segment)),
            "status": _s("pending"),
            "hop": _n(0),
            "cursor": _s(_cursor_text(None)),
            "checkpoints": _n(0),
            "updated_at": _s(now_iso()),
            TTL_ATTRIBUTE: expires,
        }
        item.update({name: _n(0) for name in Counts().as_dict()})
        return item

    def _shard_item(
        self, run_id: str, first: int, count: int, expires: dict[str, str]
    ) -> dict[str, Any]:
        return {
            "run_id": _s(run_id),
            "part": _s(shard_part(first)),
            "status": _s("pending"),
            "first": _n(first),
            "count": _n(count),
            "updated_at": _s(now_iso()),
            TTL_ATTRIBUTE: expires,
        }

    # -- sharded planning -------------------------------------------------------------

    def pending_shards(self, run_id: str) -> list[tuple[int, int, str]]:
        """The run's shards whose segments are not all written and sent yet:
        (first, count, updated_at)."""
        shards: list[tuple[int, int, str]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "run_id = :run AND begins_with(part, :shard)",
            "FilterExpression": "#status = :pending",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":run": _s(run_id),
                ":shard": _s(SHARD_PREFIX),
                ":pending": _s("pending"),
            },
        }
        while True:
            page = self._call("Query", lambda: self.client.query(**kwargs))
            shards.extend(
                (int(item["first"]["N"]), int(item["count"]["N"]), item["updated_at"]["S"])
                for item in page.get("Items", [])
            )
            if "LastEvaluatedKey" not in page:
                return shards
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark_shard_planned(self, run_id: str, first: int) -> None:
        """Every segment of the shard is written and its message sent."""
        self._update_key(
            run_id,
            shard_part(first),
            "SET #status = :planned, #updated_at = :now",
            "attribute_exists(run_id)",
            {":planned": _s("planned"), ":now": _s(now_iso())},
        )

    def unplanned_segments(self, run_id: str, segments: range) -> tuple[list[int], list[int]]:
        """Of ``segments``: those with no ledger item yet, and those still pending at
        hop 0 (written, their first message maybe not sent)."""
        found: dict[int, dict[str, Any]] = {}
        keys = [{"run_id": _s(run_id), "part": _s(segment_part(n))} for n in segments]
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": keys[start : start + 100],
                    "ConsistentRead": True,
                    "ProjectionExpression": "part, #status, #hop",
                    "ExpressionAttributeNames": {"#status": "status", "#hop": "hop"},
                }
            }

            def read(request: dict[str, Any] = request) -> None:
                response = self._call(
                    "BatchGetItem", lambda: self.client.batch_get_item(RequestItems=request)
                )
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[int(item["part"]["S"].removeprefix(SEGMENT_PREFIX))] = item
                request.clear()
                request.update(response.get("UnprocessedKeys") or {})
                if request:
                    raise Unprocessed(f"ledger {self.table_name}: batch get left unprocessed keys")

            self.retry.for_unprocessed(20).call(read, "ledger.BatchGetItem.unprocessed")
        missing = [n for n in segments if n not in found]
        unstarted = [
            n
            for n, item in found.items()
            if item["status"]["S"] == "pending" and item["hop"]["N"] == "0"
        ]
        return missing, sorted(unstarted)

    def create_segments(self, run_id: str, segments: Sequence[int]) -> None:
        """Write pending items for ``segments`` (a shard's planner, before their messages)."""
        expires = _n(int(time.time()) + RETENTION_SECONDS)
        self._batch_put(self._segment_item(run_id, segment, expires) for segment in segments)

    def _batch_put(self, items: Iterator[dict[str, Any]]) -> None:
        batch: list[dict[str, Any]] = []
        for item in items:
            batch.append({"PutRequest": {"Item": item}})
            if len(batch) == 25:
                self._write_batch(batch)
                batch = []
        if batch:
            self._write_batch(batch)

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        pending = {self.table_name: requests}

        def write() -> None:
            nonlocal pending
            response = self._call(
                "BatchWriteItem", lambda: self.client.batch_write_item(RequestItems=pending)
            )
            pending = response.get("UnprocessedItems") or {}
            if pending:
                raise Unprocessed(f"ledger {self.table_name}: batch write left unprocessed items")

        self.retry.for_unprocessed(20).call(write, "ledger.BatchWriteItem.unprocessed")

    def get_run(self, run_id: str) -> RunRecord | None:
        item = self._get(run_id, RUN_PART)
        return RunRecord.from_item(item) if item else None

    def list_runs(self) -> list[RunRecord]:
        """Every run in the ledger (it keeps 30 days), newest first."""
        runs: list[RunRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "part = :run",
            "ExpressionAttributeValues": {":run": _s(RUN_PART)},
        }
        while True:
            page = self._call("Scan", lambda: self.client.scan(**kwargs))
            runs.extend(RunRecord.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(runs, key=lambda run: run.created_at, reverse=True)

    def latest_run_id(self, sweep: str) -> str | None:
        item = self._get(f"SWEEP#{sweep}", SWEEP_PART)
        return item["latest_run_id"]["S"] if item else None

    def point_sweep_at(self, sweep: str, run_id: str, previous: str | None) -> bool:
        """Make ``run_id`` the sweep's latest run, if nobody else did since ``previous``."""
        condition = "attribute_not_exists(run_id)"
        values: dict[str, Any] = {}
        if previous is not None:
            condition = "latest_run_id = :previous"
            values[":previous"] = _s(previous)
        try:
            self._call(
                "PutItem",
                lambda: self.client.put_item(
                    TableName=self.table_name,
                    Item={
                        "run_id": _s(f"SWEEP#{sweep}"),
                        "part": _s(SWEEP_PART),
                        "latest_run_id": _s(run_id),
                        "updated_at": _s(now_iso()),
                    },
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": values} if values else {}),
                ),
            )
        except ConditionFailed:
            return False
        return True

    # -- segments ---------------------------------------------------------------------

    def get_segment(self, run_id: str, segment: int) -> SegmentState | None:
        item = self._get(run_id, segment_part(segment))
        return SegmentState.from_item(item) if item else None

    def list_segments(self, run_id: str) -> list[SegmentState]:
        segments: list[SegmentState] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "run_id = :run AND begins_with(part, :seg)",
            "ExpressionAttributeValues": {":run": _s(run_id), ":seg": _s(SEGMENT_PREFIX)},
        }
        while True:
            page = self._call("Query", lambda: self.client.query(**kwargs))
            segments.extend(SegmentState.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return segments
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def raise_hop(self, run_id: str, segment: int, hop: int) -> bool:
        """Accept a continuation whose hop bump was lost: hop := ``hop`` if it is lower."""
        return self._update(
            run_id,
            segment,
            "SET #hop = :hop, #status = :running, #updated_at = :now",
            "#hop < :hop AND #status <> :done",
            {
                ":hop": _n(hop),
                ":running": _s("running"),
                ":done": _s("done"),
                ":now": _s(now_iso()),
            },
        )

    def checkpoint(
        self,
        run_id: str,
        segment: int,
        *,
        hop: int,
        checkpoints: int,
        cursor: Key | None,
        counts: Counts,
        done: bool,
    ) -> bool:
        """Record one page: new cursor, counters added, status. False if another worker moved on.

        A write whose response was lost (a 5xx or a dropped connection after it took
        effect) is retried and then finds its own condition false; it is recognised
        by the item holding exactly what it wrote, and is not mistaken for another
        worker's: that would acknowledge the message and leave the segment with none.
        """
        written = self._checkpoint(run_id, segment, hop, checkpoints, cursor, counts, done)
        if written:
            return True
        state = self.get_segment(run_id, segment)
        return (
            state is not None
            and state.hop == hop
            and state.checkpoints == checkpoints + 1
            and state.status == ("done" if done else "running")
            and _cursor_text(state.cursor) == _cursor_text(cursor)
        )

    def _checkpoint(
        self,
        run_id: str,
        segment: int,
        hop: int,
        checkpoints: int,
        cursor: Key | None,
        counts: Counts,
        done: bool,
    ) -> bool:
        increments, values, names = _increments(counts)
        values |= {
            ":hop": _n(hop),
            ":seen": _n(checkpoints),
            ":next": _n(checkpoints + 1),
            ":cursor": _s(_cursor_text(cursor)),
            ":status": _s("done" if done else "running"),
            ":done": _s("done"),
            ":now": _s(now_iso()),
        }
        request = self._update_request(
            run_id,
            segment_part(segment),
            "SET #cursor = :cursor, #checkpoints = :next, #status = :status, "
            f"#updated_at = :now REMOVE #last_error ADD {increments}",
            "#hop = :hop AND #checkpoints = :seen AND #status <> :done",
            values,
            names,
        )
        return self._update_counting_done(run_id, request) if done else self._apply(request)

    def advance_hop(self, run_id: str, segment: int, hop: int, usage: Counts) -> bool:
        """After sending the continuation: hop := hop + 1, if it is still ``hop``.

        ``usage`` (messages, worker_ms) is added in the same write.
        """
        return self._update(
            run_id,
            segment,
            "SET #hop = :next, #updated_at = :now ADD messages :messages, worker_ms :ms",
            "#hop = :hop",
            {
                ":hop": _n(hop),
                ":next": _n(hop + 1),
                ":now": _s(now_iso()),
                ":messages": _n(usage.messages),
                ":ms": _n(usage.worker_ms),
            },
        )

    def record_failure(self, run_id: str, segment: int, error: str) -> bool:
        return self._update(
            run_id,
            segment,
            "SET #status = :failed, #last_error = :error, #updated_at = :now, "
            "first_error = if_not_exists(first_error, :error)",
            "attribute_exists(run_id) AND #status <> :done",
            {
                ":failed": _s("failed"),
                ":done": _s("done"),
                ":error": _s(error[:MAX_ERROR_LENGTH] or "error"),
                ":now": _s(now_iso()),
            },
        )

    # -- halting on a systemic error (DESIGN.md, "Ledger table") ------------------------

    def get_segment_and_run(
        self, run_id: str, segment: int
    ) -> tuple[SegmentState | None, RunRecord | None]:
        """The segment and its run in one consistent BatchGetItem: what a worker's claim
        reads, so it sees a halted run at no extra round trip."""
        keys = [
            {"run_id": _s(run_id), "part": _s(segment_part(segment))},
            {"run_id": _s(run_id), "part": _s(RUN_PART)},
        ]
        found: dict[str, dict[str, Any]] = {}

        def read() -> None:
            nonlocal keys
            response = self._call(
                "BatchGetItem",
                lambda wanted=keys: self.client.batch_get_item(
                    RequestItems={self.table_name: {"Keys": wanted, "ConsistentRead": True}}
                ),
            )
            for item in response.get("Responses", {}).get(self.table_name, []):
                found[item["part"]["S"]] = item
            keys = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if keys:
                raise Unprocessed(f"ledger {self.table_name}: batch get left unprocessed keys")

        self.retry.for_unprocessed(10).call(read, "ledger.BatchGetItem.unprocessed")
        state = found.get(segment_part(segment))
        run = found.get(RUN_PART)
        return (
            SegmentState.from_item(state) if state else None,
            RunRecord.from_item(run) if run else None,
        )

    def halt_run(self, run_id: str, halt: Halt) -> bool:
        """Mark a running run halted with ``halt``; False if it was not running (the
        first halter wins and keeps its error)."""
        return self._update_key(
            run_id,
            RUN_PART,
            "SET #status = :halted, halt = :halt",
            "#status = :running",
            {":halted": _s("halted"), ":running": _s("running"), ":halt": halt.to_item()},
        )

    def halt_segment(self, run_id: str, segment: int, hop: int, error: str) -> bool:
        """Mark the segment halted at ``hop``, its cursor and counters as checkpointed.

        False if it is done or a later hop holds it (this message is stale). A hop
        above the ledger's is a continuation whose hop bump was lost: it is taken.
        """
        return self._update(
            run_id,
            segment,
            "SET #status = :halted, #hop = :hop, #last_error = :error, #updated_at = :now, "
            "first_error = if_not_exists(first_error, :error)",
            "attribute_exists(run_id) AND #hop <= :hop AND #status <> :done",
            {
                ":halted": _s("halted"),
                ":done": _s("done"),
                ":hop": _n(hop),
                ":error": _s(error[:MAX_ERROR_LENGTH] or "error"),
                ":now": _s(now_iso()),
            },
        )

    def resume_run(self, run_id: str) -> bool:
        """A halted run runs again; its error is kept as ``last_halt``. False if it
        was not halted."""
        return self._update_key(
            run_id,
            RUN_PART,
            "SET #status = :running, last_halt = halt REMOVE halt",
            "#status = :halted",
            {":halted": _s("halted"), ":running": _s("running")},
        )

    # -- completion -------------------------------------------------------------------

    def _update_counting_done(self, run_id: str, segment_update: dict[str, Any]) -> bool:
        """The segment's last checkpoint (it becomes done) and the run's count of done
        segments, in one transaction: a duplicate finish fails the segment's condition
        and is not counted, no crash can come between the two, and no item grows with
        the number of segments."""
        items = [
            {"Update": segment_update},
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"run_id": _s(run_id), "part": _s(RUN_PART)},
                    "UpdateExpression": "ADD segments_done :one",
                    "ConditionExpression": "attribute_exists(run_id)",
                    "ExpressionAttributeValues": {":one": _n(1)},
                }
            },
        ]
        try:
            self._call(
                "TransactWriteItems", lambda: self.client.transact_write_items(TransactItems=items)
            )
        except ConditionFailed:
            return False
        except FatalError as exc:
            if not str(exc).startswith(NO_TRANSACTIONS):
                raise
            return self._update_then_count_done(run_id, segment_update)
        return True

    def _update_then_count_done(self, run_id: str, segment_update: dict[str, Any]) -> bool:
        """For an engine without transactions (dynalite, a local emulator only): the same
        two writes one after the other. A duplicate is still not counted, but a crash
        between them leaves the segment done and uncounted, and its run open."""
        logger.warning("no TransactWriteItems: counting the done segment in a second write")
        if not self._apply(segment_update):
            return False
        self._call(
            "UpdateItem",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"run_id": _s(run_id), "part": _s(RUN_PART)},
                UpdateExpression="ADD segments_done :one",
                ConditionExpression="attribute_exists(run_id)",
                ExpressionAttributeValues={":one": _n(1)},
            ),
        )
        return True

    def finish_run_if_complete(self, run_id: str) -> Counts | None:
        """Finish the run if every segment is counted done (anyone may ask, any number
        of times: the one whose finish completed it, or a redelivery after a crash)."""
        run = self.get_run(run_id)
        if run is None or run.status != "running" or run.segments_done < run.total_segments:
            return None
        return self.finish_run(run_id, run.total_segments)

    def finish_run(self, run_id: str, total_segments: int) -> Counts | None:
        """Sum the segments once and mark the run done; None if someone already did, or
        if a segment is not done after all (an operator reopened it: its rerun will
        finish the run).

        The segments are read a page at a time and only summed, so a run of a million
        segments takes a few hundred Query pages and no more memory than one page.
        """
        done, totals = self.sum_done_segments(run_id)
        if done != total_segments:
            return None
        finished = self._update_key(
            run_id,
            RUN_PART,
            "SET #status = :done, totals = :totals, finished_at = :now",
            "#status = :running AND segments_done = :total",
            {
                ":done": _s("done"),
                ":running": _s("running"),
                ":total": _n(total_segments),
                ":now": _s(now_iso()),
                ":totals": {"M": {name: _n(v) for name, v in totals.item_values().items()}},
            },
        )
        return totals if finished else None

    def sum_done_segments(self, run_id: str) -> tuple[int, Counts]:
        """How many segments are done and their counters summed, or (-1, zero) as soon
        as one is not done. Whole items are read: each index's write units sit in an
        attribute named after it, unknown here (a projection would not lower the read
        units, which count the whole item anyway)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "run_id = :run AND begins_with(part, :seg)",
            "ExpressionAttributeValues": {":run": _s(run_id), ":seg": _s(SEGMENT_PREFIX)},
        }
        done, totals = 0, Counts()
        while True:
            page = self._call("Query", lambda: self.client.query(**kwargs))
            for item in page.get("Items", []):
                if item["status"]["S"] != "done":
                    return -1, Counts()
                done += 1
                totals = totals + Counts.from_item(item)
            if "LastEvaluatedKey" not in page:
                return done, totals
            if self.retry.budget.remaining_seconds() <= self.retry.floor_seconds:
                raise RetryableError(f"out of time summing run {run_id}: its redelivery sums it")
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- plumbing ---------------------------------------------------------------------

    def _get(self, run_id: str, part: str) -> dict[str, Any] | None:
        response = self._call(
            "GetItem",
            lambda: self.client.get_item(
                TableName=self.table_name,
                Key={"run_id": _s(run_id), "part": _s(part)},
                ConsistentRead=True,
            ),
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _update(
        self, run_id: str, segment: int, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        return self._update_key(run_id, segment_part(segment), update, condition, values)

    def _update_key(
        self, run_id: str, part: str, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        return self._apply(self._update_request(run_id, part, update, condition, values))

    def _update_request(
        self,
        run_id: str,
        part: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        extra_names: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """An UpdateItem's arguments, with the NAMES it uses and ``extra_names``."""
        names = {name: attr for name, attr in NAMES.items() if name in update or name in condition}
        return {
            "TableName": self.table_name,
            "Key": {"run_id": _s(run_id), "part": _s(part)},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names | (extra_names or {}),
            "ExpressionAttributeValues": values,
        }

    def _apply(self, request: dict[str, Any]) -> bool:
        """Run a conditional UpdateItem; False if its condition failed."""
        try:
            self._call("UpdateItem", lambda: self.client.update_item(**request))
        except ConditionFailed:
            return False
        return True

    def _call(self, what: str, operation: Any) -> Any:
        return self.retry.call(operation, f"ledger.{what}")

    # -- operator requeue (scavenger requeue) -----------------------------------------

    def requeue_segment(
        self,
        state: SegmentState,
        *,
        new_hop: int,
        nonce: str,
        from_start: bool,
        reopen_run: bool,
    ) -> bool:
        """Operator requeue, written before its message is sent, as one transaction.

        The segment moves to ``new_hop`` (older messages become stale) and pending,
        with the intent kept in ``requeue`` until ``confirm_requeue``: a requeue cut
        short before its send is found and finished by running it again. From the
        start, the cursor goes back to the start and the item counters keep only
        what was deleted (deleted items never reappear in a rescan; everything else
        is counted again); effort counters (throttled, units, messages, time) stay.
        ``reopen_run`` takes a done segment out of the run's count of done segments
        (the segment's condition holds it done, so it was counted) and sets the run
        running again. False if the segment moved since ``state`` was read.
        """
        now = now_iso()
        names = {
            "#status": "status",
            "#hop": "hop",
            "#checkpoints": "checkpoints",
            "#updated_at": "updated_at",
            "#requeue": "requeue",
        }
        values: dict[str, Any] = {
            ":hop": _n(state.hop),
            ":seen": _n(state.checkpoints),
            ":was": _s(state.status),
            ":next": _n(new_hop),
            ":pending": _s("pending"),
            ":now": _s(now),
            ":intent": {
                "M": {
                    "nonce": _s(nonce),
                    "hop": _n(new_hop),
                    "from_start": {"BOOL": from_start},
                    "requested_at": _s(now),
                }
            },
        }
        update = "SET #hop = :next, #status = :pending, #updated_at = :now, #requeue = :intent"
        if from_start:
            names |= {"#cursor": "cursor", "#scanned": "scanned", "#expired": "expired"}
            names |= {"#skipped": "skipped", "#unparseable": "unparseable"}
            kept = state.counts.deleted
            update += (
                ", #cursor = :start, #scanned = :kept, #expired = :kept,"
                " #skipped = :zero, #unparseable = :zero"
            )
            values |= {":start": _s(_cursor_text(None)), ":kept": _n(kept), ":zero": _n(0)}
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"run_id": _s(state.run_id), "part": _s(segment_part(state.segment))},
                    "UpdateExpression": update,
                    "ConditionExpression": (
                        "#hop = :hop AND #checkpoints = :seen AND #status = :was"
                    ),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        if reopen_run:
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"run_id": _s(state.run_id), "part": _s(RUN_PART)},
                        "UpdateExpression": (
                            "SET #status = :running REMOVE totals, finished_at "
                            "ADD segments_done :minus_one"
                        ),
                        "ConditionExpression": "attribute_exists(run_id)",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":running": _s("running"),
                            ":minus_one": _n(-1),
                        },
                    }
                }
            )

        try:
            self._call(
                "TransactWriteItems", lambda: self.client.transact_write_items(TransactItems=items)
            )
        except ConditionFailed:
            return False
        return True

    def requeue_intents(self, run_id: str) -> dict[int, dict[str, Any]]:
        """Requeues of ``run_id`` not yet confirmed sent: segment -> nonce, hop,
        from_start, requested_at."""
        intents: dict[int, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "run_id = :run AND begins_with(part, :seg)",
            "FilterExpression": "attribute_exists(#requeue)",
            "ProjectionExpression": "part, #requeue",
            "ExpressionAttributeNames": {"#requeue": "requeue"},
            "ExpressionAttributeValues": {":run": _s(run_id), ":seg": _s(SEGMENT_PREFIX)},
        }
        while True:
            page = self._call("Query", lambda: self.client.query(**kwargs))
            for item in page.get("Items", []):
                intent = item["requeue"]["M"]
                intents[int(item["part"]["S"].removeprefix(SEGMENT_PREFIX))] = {
                    "nonce": intent["nonce"]["S"],
                    "hop": int(intent["hop"]["N"]),
                    "from_start": intent["from_start"]["BOOL"],
                    "requested_at": intent["requested_at"]["S"],
                }
            if "LastEvaluatedKey" not in page:
                return intents
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def confirm_requeue(self, run_id: str, segment: int, nonce: str) -> bool:
        """The requeue's message is on the queue: drop its intent, if it is still this one."""
        try:
            self._call(
                "UpdateItem",
                lambda: self.client.update_item(
                    TableName=self.table_name,
                    Key={"run_id": _s(run_id), "part": _s(segment_part(segment))},
                    UpdateExpression="REMOVE #requeue",
                    ConditionExpression="#requeue.#nonce = :nonce",
                    ExpressionAttributeNames={"#requeue": "requeue", "#nonce": "nonce"},
                    ExpressionAttributeValues={":nonce": _s(nonce)},
                ),
            )
        except ConditionFailed:
            return False
        return True
