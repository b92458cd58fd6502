"""A chaos run: prepare as the demo does, sweep under faults, drive to completion, check."""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scavenger.ledger import Ledger
from scavenger.tools.local.chaos.books import FaultJournal
from scavenger.tools.local.chaos.check import Snapshot, check
from scavenger.tools.local.chaos.fleet_faults import ChaosFleetHooks, poller_client
from scavenger.tools.local.chaos.hosts import new_client, plan_in_process
from scavenger.tools.local.chaos.options import ChaosOptions
from scavenger.tools.local.chaos.plan import ChaosPlan, poison_bodies, sub_seed
from scavenger.tools.local.chaos.queues import (
    Recovery,
    dead_letters,
    dlq_letters,
    queue_count,
    recover,
)
from scavenger.tools.local.chaos.report import ChaosReport
from scavenger.tools.local.chaos.writer import ConcurrentWriter
from scavenger.tools.local.demo import (
    DemoObserver,
    FunctionLogs,
    Prepared,
    QuietObserver,
    RunMonitor,
    Setup,
    StartedRun,
    check_boundary,
    delete_mode_for,
    plan_run,
    prepare,
    remaining_keys,
    start_run,
)
from scavenger.tools.local.emulator import Emulator, Endpoints
from scavenger.tools.local.fleet import Fleet, FleetOptions, FleetStats

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient


def run_chaos(
    options: ChaosOptions,
    observer: DemoObserver | None = None,
    endpoints: Endpoints | None = None,
) -> ChaosReport:
    """Seed, plan, sweep under faults, drive to completion, check. With ``endpoints``
    (a running emulator, as the tests share one), its resources get a unique suffix."""
    observer = observer or QuietObserver()
    logs = FunctionLogs(options.log_path, "scavenger-chaos-")
    with logs.noted(), tempfile.TemporaryDirectory(prefix="scavenger-chaos-") as directory:
        workdir = Path(directory)
        if endpoints is not None:
            report = _run(_start(options, endpoints, workdir, logs.path, observer, True), observer)
        else:
            observer.stage(f"starting the emulator (DynamoDB on {options.dynamodb})")
            with Emulator(dynamodb=options.dynamodb) as started:
                run = _start(options, started, workdir, logs.path, observer, False)
                report = _run(run, observer)
    report.log_path = logs.settle(report.ok)
    return report


@dataclass
class ChaosRun:
    """One chaos run's fixed parts, from preparation on."""

    options: ChaosOptions
    endpoints: Endpoints
    log_path: Path
    plan: ChaosPlan
    journal: FaultJournal
    dynamodb: DynamoDBClient
    sqs: SQSClient
    prepared: Prepared
    ledger: Ledger
    started: StartedRun
    began: float
    poison: list[str] = field(default_factory=list)

    def hooks(self, plan: ChaosPlan) -> ChaosFleetHooks:
        in_process = self.endpoints if self.options.in_process else None
        return ChaosFleetHooks(
            plan,
            self.journal,
            sqs=self.sqs,
            target=self.prepared.resources,
            workers=self.options.workers,
            in_process=in_process,
        )

    def fleet(self, hooks: ChaosFleetHooks | None, sqs: SQSClient) -> Fleet:
        options = self.options
        return Fleet(
            FleetOptions(
                queue_url=self.prepared.resources.queue_url,
                workers=options.workers,
                timeout_seconds=options.timeout_seconds,
                environment=self.prepared.environment,
                region=self.endpoints.region,
                retry_delay=options.retry_delay,
                batch_size=1,
                log_path=self.log_path,
                hooks=hooks,
                drained_readings=1,  # SQS is always moto here: its counters are exact
                poll_wait_seconds=0,  # and its long poll sleeps through unblocked groups
            ),
            sqs,
        )


def _run(run: ChaosRun, observer: DemoObserver) -> ChaosReport:
    """Sweep under faults, drive the run to completion, check."""
    stats, writer = _sweep(run, observer)
    observer.stage("driving the run to completion: redrive, then the fleet again (no faults)")
    recovery = _recover(run)
    observer.stage("checking the table, the ledger and the queues")
    return check(_snapshot(run, writer, stats, recovery, time.monotonic() - run.began))


def _start(
    options: ChaosOptions,
    endpoints: Endpoints,
    workdir: Path,
    log_path: Path,
    observer: DemoObserver,
    suffix: bool,
) -> ChaosRun:
    """Prepare as the demo does, plan the run, send the poison."""
    began = time.monotonic()
    plan = ChaosPlan.from_seed(options.seed, options.items, options.error_scale)
    journal = FaultJournal(workdir / "faults.jsonl")
    dynamodb, sqs = new_client("dynamodb", endpoints), new_client("sqs", endpoints)
    setup = Setup(
        items=options.items,
        segments=options.total_segments,
        timeout_seconds=options.timeout_seconds,
        rng=random.Random(sub_seed(options.seed, "data")),
        suffix=f"-{uuid.uuid4().hex[:6]}" if suffix else "",
        page_size=options.page_size,
        delete_mode=delete_mode_for(options.dynamodb),
        deletes_per_second=options.deletes_per_second,
        max_receive_count=options.max_receive_count,
    )
    prepared = prepare(endpoints, dynamodb, sqs, workdir, setup, observer)
    prepared.environment |= options.margin_environment()
    ledger = Ledger(dynamodb, prepared.resources.ledger_table)

    def planner() -> tuple[str, int]:
        if options.in_process:
            return plan_in_process(prepared.environment, endpoints)
        return plan_run(prepared.environment, endpoints.region, log_path)

    started = start_run(ledger, observer, planner)
    check_boundary(prepared.seeded_at, started.cutoff)
    run = ChaosRun(
        options, endpoints, log_path, plan, journal, dynamodb, sqs, prepared, ledger, started, began
    )
    _send_poison(run)
    return run


def _send_poison(run: ChaosRun) -> None:
    run.poison = poison_bodies(run.plan)
    for number, body in enumerate(run.poison):
        run.sqs.send_message(
            QueueUrl=run.prepared.resources.queue_url,
            MessageBody=body,
            MessageGroupId=f"chaos-poison#{number}",
            MessageDeduplicationId=f"chaos-poison-{run.options.seed}-{number}",
        )
        run.journal.record("poison_message", group=f"chaos-poison#{number}")


def _sweep(run: ChaosRun, observer: DemoObserver) -> tuple[FleetStats, ConcurrentWriter]:
    """The fleet under faults, with the concurrent writer at work."""
    options, started = run.options, run.started
    expired = [item for item in run.prepared.truth if item.expired(started.cutoff)]
    writer = ConcurrentWriter(
        new_client("dynamodb", run.endpoints),
        run.prepared.resources.table,
        expired,
        run.plan,
        started.cutoff,
        run.journal,
        spread_seconds=max(1.0, options.items / 150),
    )
    observer.stage(
        f"sweeping {started.segments} segments with {options.workers} workers under chaos "
        f"(seed {options.seed})"
    )
    hooks = run.hooks(run.plan)
    monitor = RunMonitor(run.ledger, started.run_id, started.segments, observer)
    writer.start()
    try:
        poller = poller_client(run.endpoints, run.plan, run.journal)
        stats = run.fleet(hooks, poller).run(on_tick=monitor.tick)
    finally:
        writer.stop()
    return stats, writer


def _recover(run: ChaosRun) -> Recovery:
    hooks = run.hooks(run.plan.quiet()) if run.options.in_process else None
    resources = run.prepared.resources
    return recover(
        run.ledger,
        run.started.run_id,
        dead_letters(run.sqs, resources.dlq_url),
        resources.queue_url,
        lambda: run.fleet(hooks, run.sqs).run(),
    )


def _snapshot(
    run: ChaosRun,
    writer: ConcurrentWriter,
    stats: FleetStats,
    recovery: Recovery,
    seconds: float,
) -> Snapshot:
    """The run's end state: the table, the ledger, the queues and the journal."""
    resources, run_id = run.prepared.resources, run.started.run_id
    dlq_segments, dlq_others = dlq_letters(dead_letters(run.sqs, resources.dlq_url))
    return Snapshot(
        options=run.options,
        plan=run.plan,
        run_id=run_id,
        total_segments=run.started.segments,
        truth=run.prepared.truth,
        cutoff=run.started.cutoff,
        poison=run.poison,
        remaining=remaining_keys(run.dynamodb, resources.table),
        writer=list(writer.changes),
        books=run.journal.books(),
        faults=run.journal.faults(),
        run=run.ledger.get_run(run_id),
        segments=run.ledger.list_segments(run_id),
        queue_left=queue_count(run.sqs, resources.queue_url),
        dlq_segment_messages=dlq_segments,
        dlq_other_bodies=dlq_others,
        stats=stats,
        recovery=recovery,
        seconds=seconds,
    )
