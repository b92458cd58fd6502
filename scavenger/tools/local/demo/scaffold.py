"""The scaffold the demo and chaos mode share: prepare a sweep (resources, config,
seeded table), start its run with the real planner, follow it in the ledger."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scavenger.expiry import parse_instant
from scavenger.ledger import Ledger
from scavenger.records import Counts
from scavenger.schema import MAX_RECEIVE_COUNT
from scavenger.tools.local.demo.observer import DemoObserver
from scavenger.tools.local.demo.resources import (
    SWEEP_NAME,
    DemoResources,
    create_resources,
    sweep_toml,
    worker_environment,
    write_sweep_config,
)
from scavenger.tools.local.demo.seed import SeededItem, seed_table
from scavenger.tools.local.emulator import Endpoints
from scavenger.tools.local.fleet import FleetStats
from scavenger.tools.local.function import Container, FunctionSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

PROGRESS_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class Setup:
    """How to prepare a sweep: the table, the queues, the ledger and the seeded items."""

    items: int
    segments: int
    timeout_seconds: float
    rng: random.Random
    suffix: str = ""
    page_size: int | None = None
    delete_mode: str = "item"
    deletes_per_second: int = 0
    write_budget: float | None = None
    max_receive_count: int = MAX_RECEIVE_COUNT


@dataclass
class Prepared:
    """What a sweep starts from: its resources, the functions' environment, the truth."""

    resources: DemoResources
    environment: dict[str, str]
    truth: list[SeededItem]
    seeded_at: datetime
    seed_seconds: float


def prepare(
    endpoints: Endpoints,
    dynamodb: DynamoDBClient,
    sqs: SQSClient,
    workdir: Path,
    setup: Setup,
    observer: DemoObserver,
) -> Prepared:
    """Create the resources, write the sweep's config, seed the table."""
    observer.stage("creating the table, the FIFO queue and DLQ, and the ledger")
    resources = create_resources(
        dynamodb, sqs, setup.suffix, setup.timeout_seconds, setup.max_receive_count
    )
    toml = sweep_toml(
        resources.table,
        setup.segments,
        setup.deletes_per_second,
        setup.delete_mode,
        max_write_units_per_second=setup.write_budget,
    )
    sweep = write_sweep_config(workdir / "scavenger.toml", toml)
    now = datetime.now(UTC).replace(microsecond=0)
    seed_started = time.monotonic()
    truth = seed_table(dynamodb, resources.table, setup.items, now, setup.rng, observer)
    seed_seconds = time.monotonic() - seed_started
    environment = worker_environment(endpoints, resources, sweep, setup.page_size)
    return Prepared(resources, environment, truth, now, seed_seconds)


@dataclass(frozen=True)
class StartedRun:
    run_id: str
    segments: int
    cutoff: datetime


def start_run(
    ledger: Ledger, observer: DemoObserver, plan: Callable[[], tuple[str, int]]
) -> StartedRun:
    """Plan the run (``plan`` calls the planner) and read its cutoff from the ledger."""
    observer.stage("planning the run (planner handler)")
    run_id, segments = plan()
    run = ledger.get_run(run_id)
    if run is None:
        raise RuntimeError(f"the planner reported run {run_id}, but the ledger has no such run")
    return StartedRun(run_id, segments, parse_instant(run.cutoff))


def plan_run(environment: dict[str, str], region: str, log_path: Path | None) -> tuple[str, int]:
    """Invoke the real planner handler in a function container, as the schedule would."""
    container = Container(
        FunctionSpec(
            handler="planner.handler.handler",
            environment=environment,
            timeout_seconds=60,
            name="scavenger-planner",
            region=region,
            log_path=log_path,
        )
    )
    try:
        result = container.invoke({"sweep": SWEEP_NAME, "dry_run": False}).result
    finally:
        container.close(wait=False)
    (run,) = result["runs"]
    if not run.get("started"):
        raise RuntimeError(f"the planner did not start a run: {run.get('reason')}")
    return str(run["run_id"]), int(run["segments"])


class RunMonitor:
    """Polls the ledger for the run's progress (segments done, items deleted)."""

    def __init__(self, ledger: Ledger, run_id: str, total: int, observer: DemoObserver):
        self.ledger = ledger
        self.run_id = run_id
        self.total = total
        self.observer = observer
        self.counts = Counts()
        self.finished = False
        self.finished_at: float | None = None  # when the run was first seen done
        self._last = 0.0
        self._settled = 0  # records settled by the fleet at the last tick

    def tick(self, stats: FleetStats) -> None:
        """Each fleet tick, and as each invocation ends: the run's item is read when a
        record has settled since (the invocation that finished the run is seen at
        once), the whole progress every PROGRESS_INTERVAL_SECONDS."""
        settled = stats.succeeded + stats.failed
        if settled != self._settled:
            self._settled = settled
            run = self.ledger.get_run(self.run_id)
            if run is not None and run.status == "done" and self.finished_at is None:
                self.finished, self.finished_at = True, time.monotonic()
        if time.monotonic() - self._last >= PROGRESS_INTERVAL_SECONDS:
            self.refresh()

    def refresh(self) -> None:
        self._last = time.monotonic()
        segments = self.ledger.list_segments(self.run_id)
        self.counts = sum((segment.counts for segment in segments), Counts())
        done = sum(1 for segment in segments if segment.status == "done")
        run = self.ledger.get_run(self.run_id)
        self.finished = run is not None and run.status == "done"
        if self.finished and self.finished_at is None:
            self.finished_at = time.monotonic()
        self.observer.sweeping(done, self.total, self.counts.deleted)

    def done(self) -> bool:
        return self.finished
