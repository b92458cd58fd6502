"""The demo's check and report: the table against the seeded truth, with the fleet's
and the ledger's figures. An item that was not expired but is gone is
``wrongly_deleted``; an expired one still there is ``missed``. Both must be 0."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scavenger.cost import Prices, estimate, write_units_basis
from scavenger.ledger import Ledger
from scavenger.records import Counts
from scavenger.tools.local.demo.options import DemoOptions
from scavenger.tools.local.demo.scaffold import Prepared, RunMonitor, StartedRun
from scavenger.tools.local.fleet import FleetStats

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass
class DemoReport:
    run_id: str
    backend: str
    items: int
    expired: int
    deleted: int
    kept: int
    wrongly_deleted: int
    missed: int
    seconds: float
    segments: int
    workers: int
    timeout_seconds: float
    fleet: FleetStats
    ledger: Counts
    seed_seconds: float
    total_seconds: float
    log_path: str | None = None
    write_budget: float | None = None

    @property
    def write_units_per_second(self) -> float:
        """Write units the run consumed (as DynamoDB reported them) per second of the run."""
        return self.ledger.write_units / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.wrongly_deleted == 0 and self.missed == 0

    @property
    def deleted_per_second(self) -> float:
        return self.deleted / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "run_id": self.run_id,
            "dynamodb": self.backend,
            "items": self.items,
            "expired": self.expired,
            "deleted": self.deleted,
            "kept": self.kept,
            "wrongly_deleted": self.wrongly_deleted,
            "missed": self.missed,
            "skipped": self.ledger.skipped,
            "unparseable": self.ledger.unparseable,
            "throttled": self.ledger.throttled,
            "ledger_deleted": self.ledger.deleted,
            "seconds": round(self.seconds, 3),
            "deleted_per_second": round(self.deleted_per_second, 1),
            "write_units_per_second": round(self.write_units_per_second, 1),
            "write_budget": self.write_budget,
            "segments": self.segments,
            "workers": self.workers,
            "timeout": self.timeout_seconds,
            "invocations": self.fleet.invocations,
            "continuations": self.fleet.continuations,
            "timeouts": self.fleet.timeouts,
            "cold_starts": self.fleet.cold_starts,
            "failed_records": self.fleet.failed,
            "dlq": self.fleet.dlq,
            "api_calls": dict(sorted(self.fleet.api_calls.items())),
            "poller_calls": dict(sorted(self.fleet.poller_calls.items())),
            "seed_seconds": round(self.seed_seconds, 3),
            "total_seconds": round(self.total_seconds, 3),
            "cost": estimate(self.ledger, prices=Prices.from_env()).to_json(),
            "write_units": round(self.ledger.write_units, 1),
            "table_write_units": round(self.ledger.table_write_units, 1),
            "write_units_by_index": self.ledger.to_json()["write_units_by_index"],
            "write_units_basis": write_units_basis(self.backend),
            "log_file": self.log_path,
        }


def check_against_truth(
    options: DemoOptions,
    prepared: Prepared,
    started: StartedRun,
    ledger: Ledger,
    monitor: RunMonitor,
) -> DemoReport:
    """The table against the seeded truth (the fleet's figures and timings come after)."""
    remaining = remaining_keys(ledger.client, prepared.resources.table)
    truth = prepared.truth
    expired_keys = {item.key for item in truth if item.expired(started.cutoff)}
    all_keys = {item.key for item in truth}
    run = ledger.get_run(started.run_id)
    return DemoReport(
        run_id=started.run_id,
        backend=options.dynamodb,
        items=len(all_keys),
        expired=len(expired_keys),
        deleted=len(all_keys - remaining),
        kept=len(remaining & all_keys),
        wrongly_deleted=len((all_keys - expired_keys) - remaining),
        missed=len(expired_keys & remaining),
        seconds=0.0,
        segments=started.segments,
        workers=options.workers,
        timeout_seconds=options.timeout_seconds,
        fleet=FleetStats(),
        ledger=run.totals if run and run.totals else monitor.counts,
        seed_seconds=prepared.seed_seconds,
        total_seconds=0.0,
        write_budget=options.write_budget,
    )


def remaining_keys(dynamodb: DynamoDBClient, table: str) -> set[tuple[int, str]]:
    keys: set[tuple[int, str]] = set()
    request: dict[str, Any] = {"TableName": table, "ProjectionExpression": "WorkerId, StartTime"}
    while True:
        page = dynamodb.scan(**request)
        keys.update(
            (int(item["WorkerId"]["N"]), item["StartTime"]["S"]) for item in page.get("Items", [])
        )
        if "LastEvaluatedKey" not in page:
            return keys
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
