"""``scavenger demo``'s run: start the emulator, seed, plan, sweep with the fleet,
check; stop everything."""

from __future__ import annotations

import os
import random
import secrets
import tempfile
import time
from pathlib import Path

from scavenger import aws
from scavenger.ledger import Ledger
from scavenger.tools.local.demo.logs import FunctionLogs
from scavenger.tools.local.demo.observer import DemoObserver, QuietObserver
from scavenger.tools.local.demo.options import DemoOptions
from scavenger.tools.local.demo.report import DemoReport, check_against_truth
from scavenger.tools.local.demo.resources import delete_mode_for
from scavenger.tools.local.demo.scaffold import (
    Prepared,
    RunMonitor,
    Setup,
    plan_run,
    prepare,
    start_run,
)
from scavenger.tools.local.demo.seed import check_boundary
from scavenger.tools.local.emulator import FAKE_CREDENTIALS, Emulator, Endpoints
from scavenger.tools.local.fleet import Fleet, FleetOptions


def run_demo(options: DemoOptions, observer: DemoObserver | None = None) -> DemoReport:
    """Start the emulator, seed, plan, sweep with the fleet, verify; stop everything.

    The functions' logs go to ``options.log_path``, or to a temporary file that is
    removed when the check passes (or when the demo stops before any function ran) and
    is otherwise kept and named: in the report, or in a note on the exception.
    """
    observer = observer or QuietObserver()
    started = time.monotonic()
    logs = FunctionLogs(options.log_path, "scavenger-demo-")
    with logs.noted(), tempfile.TemporaryDirectory(prefix="scavenger-demo-") as workdir:
        emulator = Emulator(
            dynamodb=options.dynamodb, endpoint_url=options.endpoint_url, region=options.region
        )
        observer.stage(_starting(options))
        with emulator as endpoints:
            report = _run(options, endpoints, Path(workdir), logs.path, observer, started)
    report.log_path = logs.settle(report.ok)
    return report


def check_endpoint(endpoint_url: str, region: str | None) -> None:
    """Fail before anything starts (one line, no progress) when nothing answers at
    ``--endpoint-url``. The emulators take any credentials; a real profile is kept."""
    for name, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    aws.client("sqs", endpoint_url=endpoint_url, region=region).list_queues()


def _starting(options: DemoOptions) -> str:
    """What the emulator step does: start one, or use the one at ``--endpoint-url``."""
    if options.endpoint_url is None:
        return f"starting the emulator (DynamoDB on {options.dynamodb})"
    if options.dynamodb == "moto":
        return f"using the emulator at {options.endpoint_url}"
    return f"starting DynamoDB on {options.dynamodb}; SQS at {options.endpoint_url}"


def _run(
    options: DemoOptions,
    endpoints: Endpoints,
    workdir: Path,
    log_path: Path,
    observer: DemoObserver,
    started: float,
) -> DemoReport:
    dynamodb = endpoints.client("dynamodb")
    sqs = endpoints.client("sqs")
    setup = Setup(
        items=options.items,
        segments=options.total_segments,
        timeout_seconds=options.timeout_seconds,
        rng=random.Random(options.seed),
        suffix=f"-{secrets.token_hex(3)}" if options.endpoint_url else "",
        page_size=options.page_size,
        delete_mode=delete_mode_for(options.dynamodb),
        write_budget=options.write_budget,
    )
    prepared = prepare(endpoints, dynamodb, sqs, workdir, setup, observer)
    # The fleet's MaximumConcurrency: the planner shares the write budget among it.
    prepared.environment["SCAVENGER_MAX_CONCURRENCY"] = str(options.workers)
    sweep_started = time.monotonic()
    ledger = Ledger(dynamodb, prepared.resources.ledger_table)
    run = start_run(
        ledger, observer, lambda: plan_run(prepared.environment, endpoints.region, log_path)
    )
    observer.stage(f"sweeping {run.segments} segments with {options.workers} workers")
    monitor = RunMonitor(ledger, run.run_id, run.segments, observer)
    fleet = Fleet(_fleet_options(options, prepared, endpoints.region, log_path), sqs)
    stats = fleet.run(until=monitor.done, on_tick=monitor.tick)
    monitor.refresh()
    # The run ends when the ledger says it is done, not when the local fleet has
    # finished stopping its pollers and containers (nothing waits for that on AWS).
    seconds = (monitor.finished_at or time.monotonic()) - sweep_started
    observer.stage("checking the table against the seeded truth")
    report = check_against_truth(options, prepared, run, ledger, monitor)
    report.fleet, report.seconds = stats, seconds
    report.total_seconds = time.monotonic() - started
    check_boundary(prepared.seeded_at, run.cutoff)
    return report


def _fleet_options(
    options: DemoOptions, prepared: Prepared, region: str, log_path: Path
) -> FleetOptions:
    return FleetOptions(
        queue_url=prepared.resources.queue_url,
        workers=options.workers,
        timeout_seconds=options.timeout_seconds,
        environment=prepared.environment,
        region=region,
        retry_delay=options.retry_delay,
        batch_size=options.batch_size,
        log_path=log_path,
    )
