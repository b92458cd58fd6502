"""The ledger table: the source of truth for where each run and segment stands.

pk ``run_id``, sk ``part``: ``RUN`` for the run, ``SEG#00007`` per segment, and
``SWEEP`` items (pk ``SWEEP#name``) pointing at each sweep's latest run. Every
progress write is a compare-and-set on (hop, checkpoints), so a page is counted
once even when two workers hold the same segment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scavenger.errors import ConditionFailed, FatalError
from scavenger.ledger_planning import PlanningLedger
from scavenger.ledger_requeue import RequeueLedger
from scavenger.ledger_store import (
    RUN_PART,
    LedgerStore,
    key,
    now_iso,
    segment_part,
)
from scavenger.ledger_store import cursor_text as _cursor_text
from scavenger.ledger_store import number as _n
from scavenger.ledger_store import string as _s
from scavenger.message import Key
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
from scavenger.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["RUN_PART", "Ledger", "now_iso", "segment_part"]

SWEEP_PART = "SWEEP"
# How an engine without transactions answers TransactWriteItems (dynalite).
NO_TRANSACTIONS = "UnknownOperationException"


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


class Ledger(LedgerStore):
    """Ledger reads and compare-and-set writes over an injected DynamoDB client.

    ``planning`` holds the planner's writes and ``requeues`` the operator's, over the
    same client, table and retry policy.
    """

    def __init__(self, client: DynamoDBClient, table_name: str, retry: RetryPolicy | None = None):
        super().__init__(client, table_name, retry)
        self.planning = PlanningLedger(client, table_name, self.retry)
        self.requeues = RequeueLedger(client, table_name, self.retry)

    # -- runs -------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        item = self._get(run_id, RUN_PART)
        return RunRecord.from_item(item) if item else None

    def list_runs(self) -> list[RunRecord]:
        """Every run in the ledger (it keeps 30 days), newest first."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "part = :run",
            "ExpressionAttributeValues": {":run": _s(RUN_PART)},
        }
        runs = [
            RunRecord.from_item(item)
            for page in self._pages("Scan", request)
            for item in page.get("Items", [])
        ]
        return sorted(runs, key=lambda run: run.created_at, reverse=True)

    def latest_run_id(self, sweep: str) -> str | None:
        item = self._get(f"SWEEP#{sweep}", SWEEP_PART)
        return item["latest_run_id"]["S"] if item else None

    def point_sweep_at(self, sweep: str, run_id: str, previous: str | None) -> bool:
        """Make ``run_id`` the sweep's latest run, if nobody else did since ``previous``."""
        condition = "attribute_not_exists(run_id)"
        options: dict[str, Any] = {}
        if previous is not None:
            condition = "latest_run_id = :previous"
            options["ExpressionAttributeValues"] = {":previous": _s(previous)}
        try:
            self._call(
                "PutItem",
                lambda: self.client.put_item(
                    TableName=self.table_name,
                    Item={
                        **key(f"SWEEP#{sweep}", SWEEP_PART),
                        "latest_run_id": _s(run_id),
                        "updated_at": _s(now_iso()),
                    },
                    ConditionExpression=condition,
                    **options,
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
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "run_id = :run AND begins_with(part, :seg)",
            "ExpressionAttributeValues": {":run": _s(run_id), ":seg": _s(SEGMENT_PREFIX)},
        }
        return [
            SegmentState.from_item(item)
            for page in self._pages("Query", request)
            for item in page.get("Items", [])
        ]

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
        written = self._update_counting_done(run_id, request) if done else self._apply(request)
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
        keys = [key(run_id, segment_part(segment)), key(run_id, RUN_PART)]
        found = {item["part"]["S"]: item for item in self._batch_get(keys, 10)}
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
            return self._transact(items)
        except FatalError as exc:
            if not str(exc).startswith(NO_TRANSACTIONS):
                raise
            return self._update_then_count_done(run_id, segment_update)

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
        out_of_time = f"out of time summing run {run_id}: its redelivery sums it"
        for page in self._pages("Query", kwargs, out_of_time=out_of_time):
            for item in page.get("Items", []):
                if item["status"]["S"] != "done":
                    return -1, Counts()
                done += 1
                totals = totals + Counts.from_item(item)
        return done, totals

    # -- plumbing ---------------------------------------------------------------------

    def _update(
        self, run_id: str, segment: int, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        return self._update_key(run_id, segment_part(segment), update, condition, values)
