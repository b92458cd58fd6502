"""The run report: one EventBridge event when a run finishes or halts.

The worker whose conditional write closed the run publishes it, then records on
the run item which closing it reported (``notified``: status and the instant it
closed, so a run reopened by ``requeue`` and closed again is reported again). A
worker that finds the run closed but that closing not reported (the redelivery
of a message whose worker crashed between closing the run and publishing)
publishes it. So the report is delivered at least once: a second copy is
possible only when a crash or a concurrent duplicate falls between PutEvents and
the ``notified`` write; ``detail.run_id`` with ``detail.closed_at`` identifies
the closing for a consumer that must see it once. Exactly once is not on offer:
PutEvents takes no idempotency key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scavenger.cost import Prices, estimate
from scavenger.errors import RetryableError
from scavenger.expiry import parse_instant
from scavenger.ledger import RUN_PART, Ledger, now_iso
from scavenger.observability import logger
from scavenger.records import Counts, RunRecord

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

EVENT_SOURCE = "scavenger"
DETAIL_TYPES = {"done": "Scavenger Run Finished", "halted": "Scavenger Run Halted"}


def closed_at(item: dict[str, Any]) -> str | None:
    """When the run item's current closing happened: ``finished_at`` once done, the
    halt's ``at`` while halted; None while it runs."""
    status = item.get("status", {}).get("S")
    if status == "done":
        return str(item.get("finished_at", {}).get("S", ""))
    if status == "halted":
        return str(item.get("halt", {}).get("M", {}).get("at", {}).get("S", ""))
    return None


def run_detail(run: RunRecord, item: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
    """What the event says about a closed run: its totals (summed from the segments if
    the run item holds none), write units (the whole, the table's, each index's), cost
    estimate, duration, first error."""
    segments = sorted(ledger.list_segments(run.run_id), key=lambda state: state.segment)
    totals = run.totals or sum((state.counts for state in segments), Counts())
    errors = [(state.segment, state.first_error) for state in segments if state.first_error]
    halt = {
        name: next(iter(value.values()))
        for name, value in item.get("halt", {}).get("M", {}).items()
    }
    first_error: dict[str, Any] | None = None
    if halt:
        first_error = {"segment": halt.get("segment"), "error": halt.get("message"), **halt}
    elif errors:
        first_error = {"segment": errors[0][0], "error": errors[0][1]}
    return {
        **run.identity(),
        "closed_at": closed_at(item),
        "duration_seconds": _seconds(run.created_at, closed_at(item)),
        "segments": run.total_segments,
        "segments_done": sum(1 for state in segments if state.status == "done"),
        "totals": totals.to_json(),
        "write_units": totals.write_units,
        "table_write_units": totals.table_write_units,
        "write_units_by_index": dict(sorted(totals.write_units_by_index.items())),
        "cost_estimate_usd": estimate(totals, prices=Prices.from_env()).to_json(),
        "first_error": first_error,
        "segments_with_errors": len(errors),
        "ledger_table": ledger.table_name,
    }


def _seconds(start: str, end: str | None) -> float | None:
    try:
        began = parse_instant(start)
        ended = parse_instant(end) if end else datetime.now(UTC)
    except ValueError:
        return None
    return round((ended - began).total_seconds(), 3)


class RunReporter:
    """Publishes a closed run's report on ``bus`` through an injected EventBridge client."""

    def __init__(self, events: EventBridgeClient, bus: str, ledger: Ledger):
        self.events = events
        self.bus = bus
        self.ledger = ledger

    def run_closed(self, run_id: str) -> bool:
        """Publish the report of ``run_id`` if it is closed and not yet reported; True if
        this call published it. A failed PutEvents raises RetryableError: the record
        fails, and its redelivery publishes again."""
        item = self._run_item(run_id)
        closing = None if item is None else closed_at(item)
        if item is None or closing is None:
            return False
        run = RunRecord.from_item(item)
        notice = f"{run.status}@{closing}"
        if item.get("notified", {}).get("S") == notice:
            return False
        detail = run_detail(run, item, self.ledger)
        response = self.ledger.retry.call(
            lambda: self.events.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": DETAIL_TYPES[run.status],
                        "Detail": json.dumps(detail, separators=(",", ":")),
                        "EventBusName": self.bus,
                    }
                ]
            ),
            "events.PutEvents",
        )
        if response.get("FailedEntryCount"):
            entry = response.get("Entries", [{}])[0]
            raise RetryableError(
                f"PutEvents on {self.bus}: {entry.get('ErrorCode')}: {entry.get('ErrorMessage')}"
            )
        self._mark_notified(run_id, notice)
        logger.info(
            "run reported", extra={"bus": self.bus, "detail_type": DETAIL_TYPES[run.status]}
        )
        return True

    def _run_item(self, run_id: str) -> dict[str, Any] | None:
        ledger = self.ledger
        response = ledger.retry.call(
            lambda: ledger.client.get_item(
                TableName=ledger.table_name,
                Key={"run_id": {"S": run_id}, "part": {"S": RUN_PART}},
                ConsistentRead=True,
            ),
            "ledger.GetItem",
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _mark_notified(self, run_id: str, notice: str) -> None:
        ledger = self.ledger
        ledger.retry.call(
            lambda: ledger.client.update_item(
                TableName=ledger.table_name,
                Key={"run_id": {"S": run_id}, "part": {"S": RUN_PART}},
                UpdateExpression="SET notified = :notice, notified_at = :now",
                ExpressionAttributeValues={":notice": {"S": notice}, ":now": {"S": now_iso()}},
            ),
            "ledger.UpdateItem",
        )
