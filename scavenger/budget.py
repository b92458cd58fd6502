"""The fleet-wide write budget of a run, and each worker's share of it.

A sweep's ``max_write_units_per_second`` is the budget for the whole run, table and
index writes together. Absent, the planner protects the table's other writers by
taking at most half of its write capacity as DescribeTable reports it: the
provisioned write units; for an on-demand table its warm throughput (capped by its
maximum on-demand write units when one is set), else 4,000 (what a new on-demand
table sustains). ``0`` means no fleet budget. The budget is divided among the
workers that can run at once, min(segments, the worker's maximum concurrency).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# What a new on-demand table (and one DescribeTable says nothing about) can take.
ON_DEMAND_WRITE_UNITS = 4000.0
DEFAULT_FRACTION = 0.5


@dataclass(frozen=True)
class WriteBudget:
    """The run's budget in write units per second (None: no budget), and why."""

    units_per_second: float | None
    reason: str
    workers: int = 0
    per_worker: float | None = None

    def shared(self, segments: int, max_concurrency: int | None) -> WriteBudget:
        """The budget divided among min(segments, max_concurrency) workers (all segments
        when the concurrency is not known: never more than the budget)."""
        workers = max(1, min(segments, max_concurrency) if max_concurrency else segments)
        per_worker = None if self.units_per_second is None else self.units_per_second / workers
        return WriteBudget(self.units_per_second, self.reason, workers, per_worker)

    def describe(self) -> str:
        if self.units_per_second is None:
            return f"no write budget ({self.reason})"
        return (
            f"write budget {self.units_per_second:g} write units/s ({self.reason}), "
            f"shared by {self.workers} worker(s) at once: {self.per_worker:.4g} each"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def table_write_capacity(description: Mapping[str, Any]) -> tuple[float, str]:
    """The table's write capacity in units per second, and where that figure came from."""
    billing = description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    provisioned = float(description.get("ProvisionedThroughput", {}).get("WriteCapacityUnits", 0))
    if billing != "PAY_PER_REQUEST" and provisioned > 0:
        return provisioned, f"provisioned {provisioned:g} write units"
    warm = float(description.get("WarmThroughput", {}).get("WriteUnitsPerSecond", 0) or 0)
    capacity, source = (
        (warm, f"on-demand, warm throughput {warm:g} write units/s")
        if warm > 0
        else (ON_DEMAND_WRITE_UNITS, f"on-demand, {ON_DEMAND_WRITE_UNITS:g} write units/s assumed")
    )
    ceiling = float(description.get("OnDemandThroughput", {}).get("MaxWriteRequestUnits", 0) or 0)
    if ceiling > 0 and ceiling < capacity:
        return ceiling, f"on-demand, maximum {ceiling:g} write request units/s"
    return capacity, source


def choose_budget(configured: float | None, description: Mapping[str, Any]) -> WriteBudget:
    """The sweep's budget if it sets one, else half the table's write capacity."""
    if configured == 0:
        return WriteBudget(None, "max_write_units_per_second = 0")
    if configured is not None:
        return WriteBudget(configured, "max_write_units_per_second")
    capacity, source = table_write_capacity(description)
    return WriteBudget(
        capacity * DEFAULT_FRACTION,
        f"default: half the table's capacity, {source}; set max_write_units_per_second "
        "to change it",
    )
