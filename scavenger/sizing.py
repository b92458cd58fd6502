"""How many segments "auto" makes: by time without a write budget, by the workers the
budget keeps busy with one; and what the planner knows of the fleet."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from scavenger.config import MAX_SEGMENTS
from scavenger.errors import ConfigError
from scavenger.records import RunRecord

# "auto" aims each segment at SEGMENT_SHARE of a worker's timeout: items per segment
# = items a worker gets through per second x that time. The rate is the sweep's own,
# measured by its last finished run (items scanned per worker-second, from the
# ledger's totals); a sweep's first run assumes DEFAULT_ITEMS_PER_WORKER_SECOND,
# which gives the 10,000-item segments of earlier versions at the default timeout.
SEGMENT_SHARE = 0.5
DEFAULT_WORKER_TIMEOUT_SECONDS = 300
DEFAULT_MAX_CONCURRENCY = 50
ITEMS_PER_SEGMENT = 10_000
DEFAULT_ITEMS_PER_WORKER_SECOND = ITEMS_PER_SEGMENT / (
    SEGMENT_SHARE * DEFAULT_WORKER_TIMEOUT_SECONDS
)
BYTES_PER_SEGMENT = 256 * 1024 * 1024
# A batch-path sweep's first run assumes this rate: the README's projection of one
# 512 MB worker on AWS (98.8 us of CPU a deleted item on 0.29 vCPU, a call of 25
# DELETEs in 20 ms, a page's Scan and checkpoint in 35 ms: 826 a second). Erring high
# is safe: too few workers are not paced, so the run measures the real rate for the
# next; too many would each be paced at their share and measure only that.
DEFAULT_BATCH_ITEMS_PER_WORKER_SECOND = 800.0
# Under a write budget "auto" runs as many workers as the budget keeps busy at full
# speed (a paced worker is billed while it waits), within these bounds: a segment holds
# at least MIN_ITEMS_PER_SEGMENT items (no worker for a handful of items) and at most
# MAX_INVOCATIONS_PER_SEGMENT worker timeouts' work (far below the hop budget).
MIN_ITEMS_PER_SEGMENT = 1_000
MAX_INVOCATIONS_PER_SEGMENT = 100


@dataclass(frozen=True)
class Fleet:
    """What the planner knows of the workers, from its environment (the stack's
    worker timeout and event source MaximumConcurrency)."""

    worker_timeout_seconds: int = DEFAULT_WORKER_TIMEOUT_SECONDS
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Fleet:
        env = os.environ if env is None else env

        def positive(name: str, default: int) -> int:
            raw = env.get(name, "")
            if not raw:
                return default
            if not raw.isdigit() or int(raw) < 1:
                raise ConfigError(f"{name}: {raw!r} must be a positive integer")
            return int(raw)

        return cls(
            worker_timeout_seconds=positive(
                "SCAVENGER_WORKER_TIMEOUT_SECONDS", DEFAULT_WORKER_TIMEOUT_SECONDS
            ),
            max_concurrency=positive("SCAVENGER_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY),
        )


@dataclass(frozen=True)
class Sizing:
    """The numbers behind an "auto" segment count (shown by ``plan --dry-run``).

    ``rule`` is "time" (segments of ``items_per_segment``, SEGMENT_SHARE of a worker's
    timeout, no write budget) or "budget" (``budget_workers``: the workers the write
    budget keeps busy at full speed, each at ``items_per_worker_second``)."""

    item_count: int
    table_bytes: int
    items_per_worker_second: float
    rate_source: str
    worker_timeout_seconds: int
    target_seconds_per_segment: float
    max_concurrency: int
    write_units_per_second: float | None
    items_per_segment: int
    segments: int
    rule: str = "time"
    write_units_per_item: float = 1.0
    budget_workers: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def size_segments(
    item_count: int,
    table_bytes: int,
    *,
    items_per_worker_second: float = DEFAULT_ITEMS_PER_WORKER_SECOND,
    rate_source: str = "default",
    fleet: Fleet = Fleet(),
    write_units_per_second: float | None = None,
    write_units_per_item: float = 1.0,
) -> Sizing:
    """How many segments "auto" makes.

    Without a write budget: segments that each take about SEGMENT_SHARE of a worker's
    timeout, and hold at most BYTES_PER_SEGMENT of table. With one: about as many
    segments as workers that the budget keeps busy at full speed (budget / one worker's
    write units a second), at most MaximumConcurrency. More would each be paced to a
    smaller share and billed while they wait; fewer would leave budget unused.
    """
    rate = items_per_worker_second
    target = SEGMENT_SHARE * fleet.worker_timeout_seconds
    per_segment = max(1, math.floor(rate * target))
    by_time = max(math.ceil(item_count / per_segment), math.ceil(table_bytes / BYTES_PER_SEGMENT))
    writers = budget_workers(write_units_per_second, rate * write_units_per_item)
    segments = by_time
    if writers is not None:
        longest = max(1, math.floor(rate * fleet.worker_timeout_seconds))
        fewest = math.ceil(item_count / (longest * MAX_INVOCATIONS_PER_SEGMENT))
        most = math.ceil(item_count / MIN_ITEMS_PER_SEGMENT)
        floor = fewest if writers < fleet.max_concurrency else by_time
        segments = max(floor, min(writers, fleet.max_concurrency, most))
    return Sizing(
        item_count=item_count,
        table_bytes=table_bytes,
        items_per_worker_second=round(rate, 3),
        rate_source=rate_source,
        worker_timeout_seconds=fleet.worker_timeout_seconds,
        target_seconds_per_segment=target,
        max_concurrency=fleet.max_concurrency,
        write_units_per_second=write_units_per_second,
        items_per_segment=per_segment,
        segments=min(MAX_SEGMENTS, max(1, segments)),
        rule="time" if writers is None else "budget",
        write_units_per_item=round(write_units_per_item, 4),
        budget_workers=writers,
    )


def budget_workers(units_per_second: float | None, worker_units_per_second: float) -> int | None:
    """Workers at full speed that a budget keeps busy; None without a budget (or when a
    worker writes nothing)."""
    if not units_per_second or worker_units_per_second <= 0:
        return None
    return max(1, math.ceil(units_per_second / worker_units_per_second))


def auto_segments(item_count: int, size_bytes: int) -> int:
    """Segments for a table with no measured rate, at the default fleet."""
    return size_segments(item_count, size_bytes).segments


def measured_rate(run: RunRecord | None) -> tuple[float, str] | None:
    """Items scanned per worker-second in a finished real run, from its totals."""
    if run is None or run.status != "done" or run.dry_run or run.totals is None:
        return None
    seconds = run.totals.worker_ms / 1000
    if seconds <= 0 or run.totals.scanned <= 0:
        return None
    return run.totals.scanned / seconds, f"run {run.run_id}"


def measured_write_share(run: RunRecord | None) -> float | None:
    """Write units per scanned item in a finished real run (one a deleted item where
    the backend reported no capacity); None when there is no such run."""
    if measured_rate(run) is None or run is None or run.totals is None:
        return None
    units = run.totals.write_units or float(run.totals.deleted)
    return units / run.totals.scanned
