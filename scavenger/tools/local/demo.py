"""``scavenger demo``: the whole system on one machine, checked against the seeded truth.

Seeds a table shaped like the original workload (WorkerId N, StartTime S,
StartExecutionTime ISO-8601 with mixed UTC offsets, Completed as 1 or "1", about
97.5 % expired), runs the real planner handler in a function container, runs the
fleet on the queue until the run is done, then scans what is left: an item that
was not expired but is gone is ``wrongly_deleted``; an expired one still there
is ``missed``. Both must be 0.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from scavenger import aws
from scavenger.config import Sweep, load_config, sweeps_to_json
from scavenger.cost import Prices, estimate, write_units_basis
from scavenger.errors import ScavengerError, Unprocessed
from scavenger.expiry import parse_instant
from scavenger.ledger import Ledger
from scavenger.records import Counts
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.schema import MAX_RECEIVE_COUNT
from scavenger.tools.local.emulator import FAKE_CREDENTIALS, DynamoDBBackend, Emulator, Endpoints
from scavenger.tools.local.fleet import (
    Fleet,
    FleetOptions,
    FleetStats,
    check_timeout,
    default_workers,
)
from scavenger.tools.local.function import Container, FunctionSpec
from scavenger.tools.provision import create_ledger_table, create_queues

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

DEFAULT_ITEMS = 10_000  # about a minute on 2 cores with moto (~190 deletes/s)
DEFAULT_TIMEOUT_SECONDS = 30.0
# One invocation per segment message, as DESIGN.md plans; Lambda's default is 10.
DEFAULT_BATCH_SIZE = 1
SWEEP_NAME = "stale-workers"
MAX_AGE = timedelta(hours=48)
# Items are never seeded closer than this to the cutoff, so the truth does not
# depend on how long seeding takes before the planner fixes the cutoff.
BOUNDARY_MARGIN = timedelta(hours=1)
# Shares of the items that must survive (about 2.5 % in all, as in the original table).
FRESH_SHARE = 0.012
INCOMPLETE_SHARE = 0.010
UNPARSEABLE_SHARE = 0.003
OFFSETS = ("Z", "+00:00", "+05:30", "-08:00", "+14:00", "-12:00", "+09:00", "-03:30")
SEED_THREADS = 4
BATCH_WRITE_SIZE = 25
SEED_ATTEMPTS = 10
PROGRESS_INTERVAL_SECONDS = 0.5


class DemoObserver(Protocol):
    """What the demo reports as it goes (the CLI draws progress bars from it)."""

    def stage(self, text: str) -> None: ...
    def seeding(self, done: int, total: int) -> None: ...
    def sweeping(self, done_segments: int, total_segments: int, deleted: int) -> None: ...


class QuietObserver:
    def stage(self, text: str) -> None:
        pass

    def seeding(self, done: int, total: int) -> None:
        pass

    def sweeping(self, done_segments: int, total_segments: int, deleted: int) -> None:
        pass


@dataclass(frozen=True)
class DemoOptions:
    items: int = DEFAULT_ITEMS
    segments: int | None = None
    workers: int = field(default_factory=default_workers)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    dynamodb: DynamoDBBackend = "moto"
    endpoint_url: str | None = None
    region: str | None = None
    seed: int | None = None
    retry_delay: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    page_size: int | None = None
    log_path: Path | None = None
    write_budget: float | None = None  # the sweep's max_write_units_per_second

    def __post_init__(self) -> None:
        if self.write_budget is not None and self.write_budget < 0:  # 0: no budget
            raise ScavengerError(f"--write-budget: {self.write_budget} must be at least zero")
        if self.items < 1:
            raise ScavengerError(f"--items: {self.items} must be at least 1")
        if self.segments is not None and not 1 <= self.segments <= 10_000:
            raise ScavengerError(f"--segments: {self.segments} must be in 1..10000")
        if self.workers < 1:
            raise ScavengerError(f"--workers: {self.workers} must be at least 1")
        check_timeout(self.timeout_seconds, self.batch_size)

    @property
    def total_segments(self) -> int:
        return self.segments if self.segments is not None else 4 * self.workers


@dataclass(frozen=True)
class SeededItem:
    """The truth about one seeded item, kept apart from how it is written."""

    key: tuple[int, str]
    instant: datetime | None  # None: the age attribute is missing, mistyped or garbage
    completed: bool

    def expired(self, cutoff: datetime) -> bool:
        return self.completed and self.instant is not None and self.instant < cutoff


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


# -- the data -------------------------------------------------------------------------


def generate_items(
    count: int, now: datetime, rng: random.Random
) -> Iterator[tuple[dict[str, Any], SeededItem]]:
    """Items like the original table's, with the truth about each one."""
    for index in range(count):
        worker_id = index // 4 + 1
        start_time = (now - timedelta(days=40) + timedelta(seconds=index)).strftime(
            "%Y-%m-%dT%H:%M:%S.%f"
        )[:-3] + "Z"
        draw = rng.random()
        completed = True
        age_text: dict[str, str] | None
        if draw < UNPARSEABLE_SHARE:
            age_text = rng.choice([{"S": "not a date"}, {"N": "1700000000"}, {"S": ""}, None])
            instant = None
        else:
            if draw < UNPARSEABLE_SHARE + FRESH_SHARE:
                age = _age(rng, fresh=True)
            else:
                age = _age(rng, fresh=False)
                if draw < UNPARSEABLE_SHARE + FRESH_SHARE + INCOMPLETE_SHARE:
                    completed = False
            instant = now - age
            age_text = {"S": iso_at_offset(instant, rng.choice(OFFSETS), rng.random() < 0.5)}
        completed_value = (
            rng.choice([{"N": "1"}, {"S": "1"}])
            if completed
            else rng.choice([{"N": "0"}, {"S": "0"}])
        )
        item: dict[str, Any] = {
            "WorkerId": {"N": str(worker_id)},
            "StartTime": {"S": start_time},
            "Completed": completed_value,
            "Host": {"S": f"worker-{worker_id % 97:02d}"},
        }
        if age_text is not None:
            item["StartExecutionTime"] = age_text
        yield item, SeededItem(key=(worker_id, start_time), instant=instant, completed=completed)


def _age(rng: random.Random, *, fresh: bool) -> timedelta:
    """An age well clear of MAX_AGE; a third of them within 15 h of it, where a
    comparison that ignored the UTC offset would get them wrong."""
    near = rng.random() < 1 / 3
    if fresh:
        high = MAX_AGE - BOUNDARY_MARGIN
        low = high - timedelta(hours=14) if near else timedelta(minutes=1)
    else:
        low = MAX_AGE + BOUNDARY_MARGIN
        high = low + timedelta(hours=14) if near else timedelta(days=30)
    return low + (high - low) * rng.random()


def iso_at_offset(instant: datetime, offset: str, millis: bool = False) -> str:
    """``instant`` as ISO-8601 at ``offset`` (one of OFFSETS; "Z" writes UTC as Z)."""
    if offset == "Z":
        zone = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = offset[1:].split(":")
        zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    text = instant.astimezone(zone).isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z") if offset == "Z" else text


# -- the run --------------------------------------------------------------------------


@dataclass
class DemoResources:
    table: str
    ledger_table: str
    queue_url: str
    dlq_url: str


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


class FunctionLogs:
    """Where the functions' logs go: the path asked for, or a temporary file that is
    removed when the check passes (or when nothing ran) and otherwise kept and named:
    in the report, or in a note on the exception."""

    def __init__(self, asked: Path | None, prefix: str):
        self.asked = asked
        self.path = asked or _temporary_log(prefix)

    @contextlib.contextmanager
    def noted(self) -> Iterator[Path]:
        try:
            yield self.path
        except BaseException as exc:
            if self.asked is None and _is_empty(self.path):
                self.path.unlink(missing_ok=True)  # nothing ran: nothing to keep
            else:
                exc.add_note(f"function logs: {self.path}")
            raise

    def settle(self, ok: bool) -> str | None:
        """The log's path to report; ``None`` (and the file gone) when it is not kept."""
        if ok and self.asked is None:
            self.path.unlink(missing_ok=True)
            return None
        return str(self.path)


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


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return True


def _temporary_log(prefix: str) -> Path:
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
    os.close(handle)
    return Path(name)


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
    report = _report(options, prepared, run, ledger, monitor)
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


def _report(
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


# -- the scaffold the demo and chaos mode share: prepare, then start the run ----------


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
    dynamodb: Any,
    sqs: Any,
    workdir: Path,
    setup: Setup,
    observer: DemoObserver,
) -> Prepared:
    """Create the resources, write the sweep's config, seed the table."""
    observer.stage("creating the table, the FIFO queue and DLQ, and the ledger")
    resources = create_resources(
        dynamodb, sqs, setup.suffix, setup.timeout_seconds, setup.max_receive_count
    )
    sweep = write_sweep_config(
        workdir / "scavenger.toml",
        resources.table,
        setup.segments,
        setup.deletes_per_second,
        setup.delete_mode,
        max_write_units_per_second=setup.write_budget,
    )
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


def worker_environment(
    endpoints: Endpoints, resources: DemoResources, sweep: Sweep, page_size: int | None
) -> dict[str, str]:
    """What the functions' containers see: the endpoints, the sweep and the resources."""
    environment = endpoints.environment()
    environment |= {
        "SCAVENGER_SWEEPS": sweeps_to_json((sweep,)),
        "SCAVENGER_QUEUE_URL": resources.queue_url,
        "SCAVENGER_DLQ_URL": resources.dlq_url,
        "SCAVENGER_LEDGER_TABLE": resources.ledger_table,
        "POWERTOOLS_SERVICE_NAME": "scavenger",
    }
    if page_size:
        environment["SCAVENGER_PAGE_SIZE"] = str(page_size)
    return environment


def check_boundary(seeded_at: datetime, cutoff: datetime) -> None:
    drift = abs((seeded_at - MAX_AGE) - cutoff)
    if drift >= BOUNDARY_MARGIN:
        raise RuntimeError(
            f"the cutoff moved {drift} from the seeding time: the seeded truth no longer holds"
        )


def create_resources(
    dynamodb: DynamoDBClient,
    sqs: SQSClient,
    suffix: str,
    timeout: float,
    max_receive_count: int = MAX_RECEIVE_COUNT,
    queue_prefix: str = "scavenger-demo",
) -> DemoResources:
    table = f"Workers{suffix}"
    ledger_table = f"scavenger-ledger{suffix}"
    try:
        create_demo_table(dynamodb, table)
        try:
            create_ledger_table(dynamodb, ledger_table)
        except ClientError as exc:
            # dynalite has no UpdateTimeToLive; the ledger works without expiry.
            if exc.response.get("Error", {}).get("Code") != "UnknownOperationException":
                raise
        # DESIGN: the visibility timeout is at least 6x the worker timeout.
        queues = create_queues(
            sqs,
            f"{queue_prefix}{suffix}",
            visibility_timeout=max(1, int(6 * timeout)),
            max_receive_count=max_receive_count,
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ResourceInUseException", "QueueAlreadyExists"):
            raise ScavengerError(f"demo resources already exist at the endpoint: {exc}") from None
        raise
    return DemoResources(table, ledger_table, queues.queue_url, queues.dlq_url)


def create_demo_table(dynamodb: DynamoDBClient, table: str) -> None:
    """The swept table, keyed like the original one (WorkerId N, StartTime S)."""
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "WorkerId", "AttributeType": "N"},
            {"AttributeName": "StartTime", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "WorkerId", "KeyType": "HASH"},
            {"AttributeName": "StartTime", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table)


def delete_mode_for(backend: str) -> str:
    """The delete path a DynamoDB backend can run faithfully: batch (PartiQL) on AWS's
    own DynamoDB Local; item on moto (its PartiQL DELETE ignores the predicates) and on
    dynalite (no PartiQL)."""
    return "batch" if backend == "dynamodb-local" else "item"


def write_sweep_config(
    path: Path,
    table: str,
    segments: int,
    deletes_per_second: int = 0,
    delete_mode: str = "item",
    *,
    max_write_units_per_second: float | None = None,
) -> Sweep:
    """The sweep, as a user would write it, read back by the real config parser.
    ``delete_mode`` stays "item" unless the caller's backend runs PartiQL faithfully
    (``delete_mode_for``); without ``max_write_units_per_second``: the planner's default
    budget."""
    path.write_text(
        sweep_toml(table, segments, deletes_per_second, delete_mode, max_write_units_per_second),
        encoding="utf-8",
    )
    return load_config(path).sweep(SWEEP_NAME)


def sweep_toml(
    table: str,
    segments: int,
    deletes_per_second: int = 0,
    delete_mode: str = "item",
    max_write_units_per_second: float | None = None,
) -> str:
    """The demo's sweep as ``[[sweeps]]`` TOML: what a user would write for this table."""
    budget = (
        ""
        if max_write_units_per_second is None
        else f"max_write_units_per_second = {max_write_units_per_second:g}\n"
    )
    return (
        "[[sweeps]]\n"
        f'name = "{SWEEP_NAME}"\n'
        f'table = "{table}"\n'
        'age_attribute = "StartExecutionTime"\n'
        'age_format = "iso8601"\n'
        'max_age = "48h"\n'
        'where = "#c IN (:n1, :s1)"\n'
        'names = { "#c" = "Completed" }\n'
        'values = { ":n1" = 1, ":s1" = "1" }\n'
        f"segments = {segments}\n"
        f"deletes_per_second = {deletes_per_second}\n"
        f'delete_mode = "{delete_mode}"\n' + budget
    )


def seed_table(
    dynamodb: DynamoDBClient,
    table: str,
    count: int,
    now: datetime,
    rng: random.Random,
    observer: DemoObserver,
) -> list[SeededItem]:
    """BatchWriteItem from a few threads; unprocessed items are retried."""
    items: list[dict[str, Any]] = []
    truth: list[SeededItem] = []
    for item, seeded in generate_items(count, now, rng):
        items.append(item)
        truth.append(seeded)
    batches = [items[n : n + BATCH_WRITE_SIZE] for n in range(0, len(items), BATCH_WRITE_SIZE)]
    written = 0
    lock = threading.Lock()
    observer.seeding(0, count)

    def write(batch: list[dict[str, Any]]) -> None:
        nonlocal written
        requests: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in batch]}

        def put() -> None:
            nonlocal requests
            response = dynamodb.batch_write_item(RequestItems=requests)
            requests = response.get("UnprocessedItems") or {}
            if requests:
                raise Unprocessed("seeding: BatchWriteItem kept returning unprocessed items")

        try:
            RetryPolicy(NoDeadline(), max_attempts=SEED_ATTEMPTS).call(put, "BatchWriteItem")
        except Unprocessed as exc:
            raise RuntimeError(str(exc)) from exc
        with lock:
            written += len(batch)
            observer.seeding(written, count)

    pool = ThreadPoolExecutor(SEED_THREADS, thread_name_prefix="seed")
    try:
        for future in [pool.submit(write, batch) for batch in batches]:
            future.result()
    finally:
        pool.shutdown(cancel_futures=True)  # a Ctrl-C does not wait for the rest
    return truth


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
