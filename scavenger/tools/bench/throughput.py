"""Deletes per second on the local emulator: the fleet against the engine's own
ceilings and against the original single-function design, on identical tables.

Every run (one mode, one repeat) starts a fresh emulator and seeds a fresh table
with the demo's generator and the same seed, so no run inherits another's data:
moto's Scan walks (and sorts) the whole table on every call, and its cost grows
with what is left in it. The modes take turns going first from one repeat to the
next. Every run ends with the table checked against the seeded truth; a run
that deleted a fresh item or left an expired one is void, and so is its mode.

- ``raw``: K processes, one parallel-scan segment each, Scan + the worker's
  batched conditional PartiQL DELETEs (25 a call) with boto3 and nothing else:
  the engine's ceiling for this way of deleting at that concurrency. On moto and
  dynalite, whose PartiQL cannot be trusted (or is missing), raw deletes with the
  conditional DeleteItem, as the fleet does there. Timed from a common start
  signal, once every process has its client and connection (startup not counted).
- ``raw_item``: like raw, one conditional DeleteItem per item: the best per-item
  deleter at that concurrency.
- ``fleet``: ``scavenger demo`` as it runs (the planner handler, then the local
  fleet of K workers), timed as the demo times it: from planning to the run
  done, cold starts and the poller included. By default with K segments (one
  per worker, as raw and baseline scan) and the stack's default worker timeout
  (300 s), the settings a user deploying K concurrent workers gets.
- ``baseline``: one process, a reader thread per segment (K segments) feeding a
  bounded ``queue.Queue`` drained by a pool of deleter threads (4 per worker by
  default): the original single-function design, written plainly. Timed like raw.

The bench processes are in scavenger.tools.bench.sweepers.
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import platform
import random
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from scavenger.config import DeleteMode, Sweep
from scavenger.errors import ScavengerError
from scavenger.settings import DEFAULT_PAGE_SIZE
from scavenger.tools.bench.sweepers import SweepJob
from scavenger.tools.local.child import ChildProcess
from scavenger.tools.local.demo import (
    DEFAULT_BATCH_SIZE,
    MAX_AGE,
    DemoOptions,
    QuietObserver,
    SeededItem,
    create_demo_table,
    remaining_keys,
    run_demo,
    seed_table,
    write_sweep_config,
)
from scavenger.tools.local.emulator import DynamoDBBackend, Emulator, Endpoints

if TYPE_CHECKING:
    from scavenger.tools.bench.cpu import CpuResult

MODES = ("raw", "raw_item", "fleet", "baseline")
DEFAULT_ITEMS = 10_000
DEFAULT_WORKERS = 4
# One run of each mode: on DynamoDB Local a table worth timing (the 50,000
# items) takes minutes per mode; --repeats N gives medians, the modes taking turns.
DEFAULT_REPEATS = 1
DEFAULT_SEED = 20261123
# The baseline's deleters: one DeleteItem per call against a whole page per Scan
# call, so deletes need several times the readers' concurrency to keep up.
DELETERS_PER_WORKER = 4
TABLE = "Workers"  # the demo's table name on its own emulator
KEYS = ("WorkerId", "StartTime")
# Where raw deletes with batched PartiQL DELETEs: only on AWS's own engine (moto's
# PartiQL DELETE ignores its predicates and dynalite has none).
PARTIQL_BACKENDS = ("dynamodb-local",)
READY_TIMEOUT_SECONDS = 60.0
# The CDK stack's default worker timeout (infra/settings.py). The demo's 30 s is
# there to show continuations; a deployed fleet of K workers runs with this one.
FLEET_TIMEOUT_SECONDS = 300.0
# The targets, shown next to the figures (a benchmark reports, it does not fail).
TARGETS = {"fleet_vs_raw": 0.85, "fleet_vs_raw_item": 2.5, "fleet_vs_baseline": 2.5}
CALLS_PER_DELETED_ITEM_TARGET = 0.06
WORKER_CPU_VS_BARE_ITEM_TARGET = 0.3


class BenchObserver(Protocol):
    """What the bench reports as it goes; also a DemoObserver for the fleet's runs."""

    def run_started(self, mode: str, repeat: int, repeats: int) -> None: ...
    def run_finished(self, run: ModeRun) -> None: ...
    def stage(self, text: str) -> None: ...
    def seeding(self, done: int, total: int) -> None: ...
    def sweeping(self, done_segments: int, total_segments: int, deleted: int) -> None: ...


class QuietBenchObserver(QuietObserver):
    def run_started(self, mode: str, repeat: int, repeats: int) -> None:
        pass

    def run_finished(self, run: ModeRun) -> None:
        pass


@dataclass(frozen=True)
class BenchOptions:
    items: int = DEFAULT_ITEMS
    workers: int = DEFAULT_WORKERS
    repeats: int = DEFAULT_REPEATS
    dynamodb: DynamoDBBackend = "dynamodb-local"
    seed: int = DEFAULT_SEED
    modes: tuple[str, ...] = MODES
    segments: int | None = None  # the fleet's; None: K, as raw and baseline
    batch_size: int = DEFAULT_BATCH_SIZE
    page_size: int = DEFAULT_PAGE_SIZE
    deleters: int | None = None  # the baseline's pool; None: 4 per worker
    timeout_seconds: float = FLEET_TIMEOUT_SECONDS
    cpu: bool = True
    cpu_pages: int = 10
    cpu_page_size: int = 500
    cpu_repeats: int = 3

    def __post_init__(self) -> None:
        if self.items < 1:
            raise ScavengerError(f"--items: {self.items} must be at least 1")
        if self.workers < 1:
            raise ScavengerError(f"--workers: {self.workers} must be at least 1")
        if self.repeats < 1:
            raise ScavengerError(f"--repeats: {self.repeats} must be at least 1")
        if self.segments is not None and not 1 <= self.segments <= 10_000:
            raise ScavengerError(f"--segments: {self.segments} must be in 1..10000")
        if not 1 <= self.batch_size <= 10:
            raise ScavengerError(f"--batch-size: {self.batch_size} must be in 1..10")
        if not 1 <= self.page_size <= 10_000:
            raise ScavengerError(f"--page-size: {self.page_size} must be in 1..10000")
        if self.deleters is not None and self.deleters < 1:
            raise ScavengerError(f"--deleters: {self.deleters} must be at least 1")
        unknown = [mode for mode in self.modes if mode not in MODES]
        if unknown:
            raise ScavengerError(f"--mode: {unknown[0]!r} is not one of {', '.join(MODES)}")

    @property
    def fleet_segments(self) -> int:
        return self.segments if self.segments is not None else self.workers

    @property
    def raw_delete_mode(self) -> DeleteMode:
        return "batch" if self.dynamodb in PARTIQL_BACKENDS else "item"

    @property
    def baseline_deleters(self) -> int:
        return self.deleters if self.deleters is not None else DELETERS_PER_WORKER * self.workers

    def order(self, repeat: int) -> tuple[str, ...]:
        """This repeat's order of the modes: each goes first in turn."""
        shift = repeat % len(self.modes) if self.modes else 0
        return self.modes[shift:] + self.modes[:shift]


@dataclass(frozen=True)
class ModeRun:
    """One mode's run on one freshly seeded table, checked against the truth."""

    mode: str
    repeat: int
    items: int
    expired: int
    deleted: int
    wrongly_deleted: int
    missed: int
    seconds: float
    api_calls: Counter[str]
    detail: dict[str, Any] = field(default_factory=dict)
    usage: CpuUsage | None = None

    @property
    def ok(self) -> bool:
        return self.wrongly_deleted == 0 and self.missed == 0

    @property
    def deletes_per_second(self) -> float:
        return self.deleted / self.seconds if self.seconds > 0 else 0.0

    @property
    def calls_per_deleted_item(self) -> float | None:
        return sum(self.api_calls.values()) / self.deleted if self.deleted else None

    def as_dict(self) -> dict[str, Any]:
        per_item = self.calls_per_deleted_item
        return {
            "repeat": self.repeat,
            "ok": self.ok,
            "void": not self.ok,
            "items": self.items,
            "expired": self.expired,
            "deleted": self.deleted,
            "kept": self.items - self.deleted,
            "wrongly_deleted": self.wrongly_deleted,
            "missed": self.missed,
            "seconds": round(self.seconds, 3),
            "deletes_per_second": round(self.deletes_per_second, 1),
            "api_calls": dict(sorted(self.api_calls.items())),
            "calls_per_deleted_item": None if per_item is None else round(per_item, 4),
            **self.detail,
            **(self.usage.as_dict() if self.usage else {}),
        }


@dataclass
class BenchReport:
    options: BenchOptions
    runs: list[ModeRun]
    cpu: CpuResult | None
    machine: dict[str, Any]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)

    @property
    def void(self) -> list[str]:
        return [f"{run.mode} repeat {run.repeat + 1}" for run in self.runs if not run.ok]

    def runs_of(self, mode: str) -> list[ModeRun]:
        return [run for run in self.runs if run.mode == mode]

    def median(self, mode: str) -> float | None:
        """The mode's median deletes per second; None when it did not run or is void."""
        runs = self.runs_of(mode)
        if not runs or not all(run.ok for run in runs):
            return None
        return statistics.median(run.deletes_per_second for run in runs)

    def ratio(self, mode: str, other: str) -> float | None:
        numerator, denominator = self.median(mode), self.median(other)
        if numerator is None or not denominator:
            return None
        return numerator / denominator

    @property
    def calls_per_deleted_item(self) -> float | None:
        """The fleet's worker API calls per deleted item (median over its runs)."""
        runs = self.runs_of("fleet")
        values = [run.calls_per_deleted_item for run in runs]
        if not runs or not all(run.ok for run in runs) or None in values:
            return None
        return statistics.median(value for value in values if value is not None)

    @property
    def fleet_delete(self) -> str | None:
        """How the fleet's workers deleted, read from the calls they made."""
        calls: Counter[str] = Counter()
        for run in self.runs_of("fleet"):
            calls.update(run.api_calls)
        if not calls:
            return None
        if calls["BatchExecuteStatement"] and calls["DeleteItem"]:
            return "batch and item"
        return "batch" if calls["BatchExecuteStatement"] else "item"

    def as_dict(self) -> dict[str, Any]:
        options = self.options

        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        data: dict[str, Any] = {
            "ok": self.ok,
            "void": self.void,
            "dynamodb": options.dynamodb,
            "items": options.items,
            "workers": options.workers,
            "repeats": options.repeats,
            "seed": options.seed,
            "raw_deletes_per_second": rounded(self.median("raw"), 1),
            "raw_item_deletes_per_second": rounded(self.median("raw_item"), 1),
            "fleet_deletes_per_second": rounded(self.median("fleet"), 1),
            "baseline_deletes_per_second": rounded(self.median("baseline"), 1),
            "fleet_vs_raw": rounded(self.ratio("fleet", "raw"), 3),
            "fleet_vs_raw_item": rounded(self.ratio("fleet", "raw_item"), 3),
            "fleet_vs_baseline": rounded(self.ratio("fleet", "baseline"), 3),
            "calls_per_deleted_item": rounded(self.calls_per_deleted_item, 4),
            "worker_cpu_vs_bare_item": rounded(self.cpu.ratio, 3) if self.cpu else None,
            # The same figure under its earlier name.
            "worker_vs_bare_cpu": rounded(self.cpu.ratio, 3) if self.cpu else None,
            "settings": {
                "page_size": options.page_size,
                "raw_segments": options.workers,
                "raw_processes": options.workers,
                "raw_delete": options.raw_delete_mode,
                "raw_item_delete": "item",
                "fleet_delete": self.fleet_delete,
                "fleet_segments": options.fleet_segments,
                "fleet_workers": options.workers,
                "fleet_batch_size": options.batch_size,
                "fleet_timeout_seconds": options.timeout_seconds,
                "baseline_segments": options.workers,
                "baseline_reader_threads": options.workers,
                "baseline_deleter_threads": options.baseline_deleters,
                "baseline_queue_size": options.page_size,
            },
            "modes": {
                mode: {
                    "deletes_per_second": rounded(self.median(mode), 1),
                    "ok": all(run.ok for run in self.runs_of(mode)),
                    "runs": [run.as_dict() for run in self.runs_of(mode)],
                }
                for mode in options.modes
            },
            "cpu": self.cpu.to_json() if self.cpu else None,
            "machine": self.machine,
            "seconds": round(self.seconds, 1),
        }
        return data


def machine(load_at_start: tuple[float, float, float] | None = None) -> dict[str, Any]:
    """What the figures were measured on, and how busy it was (``uptime``'s load averages)."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model or platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": _load(load_at_start),
        "load_average_at_end": _load(os.getloadavg()),
    }


def _load(load: tuple[float, float, float] | None) -> list[float] | None:
    return None if load is None else [round(value, 2) for value in load]


@dataclass(frozen=True)
class CpuUsage:
    """CPU time over one whole run (seeding included): ours, and everyone else's.

    The machine's busy time comes from /proc/stat; ours is this process and its
    reaped children (the emulator, the containers, the bench processes: all
    stopped by the end of a run). A large ``other`` share means another
    program competed for the cores and the run's figure is disturbed.
    """

    wall_seconds: float
    own_seconds: float
    other_seconds: float

    def other_share(self, cpus: int) -> float:
        capacity = self.wall_seconds * max(cpus, 1)
        return self.other_seconds / capacity if capacity > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_wall_seconds": round(self.wall_seconds, 1),
            "own_cpu_seconds": round(self.own_seconds, 1),
            "other_cpu_seconds": round(self.other_seconds, 1),
        }


class CpuWatch:
    def __enter__(self) -> CpuWatch:
        self._wall = time.monotonic()
        self._busy = _machine_busy_seconds()
        self._own = _own_cpu_seconds()
        self.usage: CpuUsage | None = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        busy = _machine_busy_seconds()
        if busy is None or self._busy is None:
            return
        own = _own_cpu_seconds() - self._own
        self.usage = CpuUsage(
            wall_seconds=time.monotonic() - self._wall,
            own_seconds=own,
            other_seconds=max(0.0, busy - self._busy - own),
        )


def _machine_busy_seconds() -> float | None:
    """All CPUs' user, nice, system, irq and softirq time since boot (Linux)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# -- the bench ------------------------------------------------------------------------


def run_bench(options: BenchOptions, observer: BenchObserver | None = None) -> BenchReport:
    """Every mode, ``repeats`` times, each on its own fresh emulator; then the CPU bench."""
    observer = observer or QuietBenchObserver()
    started = time.monotonic()
    load = os.getloadavg()
    runs: list[ModeRun] = []
    for repeat in range(options.repeats):
        for mode in options.order(repeat):
            observer.run_started(mode, repeat, options.repeats)
            load_before = os.getloadavg()[0]
            with CpuWatch() as watch:
                run = RUNNERS[mode](options, repeat, observer)
            # The 1-minute load average (as `uptime` shows it) before and after the run:
            # a shared machine's other programs move the figures by tens of per cent.
            loads = {"load_1min_before": round(load_before, 2)}
            loads["load_1min_after"] = round(os.getloadavg()[0], 2)
            run = replace(run, usage=watch.usage, detail={**run.detail, **loads})
            runs.append(run)
            observer.run_finished(run)
    cpu = None
    if options.cpu:
        observer.stage("measuring the worker's CPU per deleted item (canned responses)")
        cpu = measure_cpu(options)
    return BenchReport(options, runs, cpu, machine(load), time.monotonic() - started)


def measure_cpu(options: BenchOptions) -> CpuResult:
    """The worker handler's CPU per deleted item against bare boto3 (scavenger.tools.bench.cpu)."""
    from scavenger.tools.bench.cpu import measure  # imports the worker handler

    return measure(options.cpu_pages, options.cpu_page_size, options.cpu_repeats)


def run_fleet(options: BenchOptions, repeat: int, observer: BenchObserver) -> ModeRun:
    """``scavenger demo`` with K workers: it starts its own emulator and checks itself."""
    report = run_demo(
        DemoOptions(
            items=options.items,
            segments=options.fleet_segments,
            workers=options.workers,
            timeout_seconds=options.timeout_seconds,
            dynamodb=options.dynamodb,
            seed=options.seed,
            batch_size=options.batch_size,
            page_size=options.page_size,
        ),
        observer,
    )
    return ModeRun(
        mode="fleet",
        repeat=repeat,
        items=report.items,
        expired=report.expired,
        deleted=report.deleted,
        wrongly_deleted=report.wrongly_deleted,
        missed=report.missed,
        seconds=report.seconds,
        api_calls=Counter(report.fleet.api_calls),
        detail={
            "segments": report.segments,
            "invocations": report.fleet.invocations,
            "continuations": report.fleet.continuations,
            "cold_starts": report.fleet.cold_starts,
            "timeouts": report.fleet.timeouts,
            "dlq": report.fleet.dlq,
            "poller_calls": dict(sorted(report.fleet.poller_calls.items())),
            "seed_seconds": round(report.seed_seconds, 3),
            "log_file": report.log_path,
        },
    )


@dataclass(frozen=True)
class Work:
    seconds: float
    api_calls: Counter[str]


TableSweep = Callable[[SweepJob], Work]


def run_table_mode(
    mode: str, options: BenchOptions, repeat: int, observer: BenchObserver
) -> ModeRun:
    """Fresh emulator, fresh table, the demo's data; sweep it with ``TABLE_SWEEPS[mode]``."""
    with tempfile.TemporaryDirectory(prefix="scavenger-bench-") as workdir:
        # No fleet write budget: the bench measures how fast the fleet can go.
        sweep = write_sweep_config(
            Path(workdir) / "scavenger.toml", TABLE, options.workers, max_write_units_per_second=0
        )
    observer.stage(f"starting the emulator (DynamoDB on {options.dynamodb})")
    with Emulator(dynamodb=options.dynamodb) as endpoints:
        dynamodb = endpoints.client("dynamodb")
        create_demo_table(dynamodb, TABLE)
        now = datetime.now(UTC).replace(microsecond=0)
        rng = random.Random(options.seed)
        truth = seed_table(dynamodb, TABLE, options.items, now, rng, observer)
        # The truth is what is in the table: an item the emulator failed to store
        # would otherwise count as deleted (or, if fresh, as wrongly deleted).
        seeded = remaining_keys(dynamodb, TABLE)
        lost = len(truth) - len(seeded)
        truth = [item for item in truth if item.key in seeded]
        # The planner's rule (cutoff = start - max_age); the data keeps clear of it.
        cutoff = now - MAX_AGE
        job = sweep_job(endpoints, sweep, cutoff, options, mode)
        observer.stage(f"sweeping with {mode}")
        work = TABLE_SWEEPS[mode](job)
        observer.stage("checking the table against the seeded truth")
        remaining = remaining_keys(dynamodb, TABLE)
    run = checked_run(mode, repeat, truth, cutoff, remaining, work)
    return replace(run, detail={"seed_lost": lost})


def sweep_job(
    endpoints: Endpoints, sweep: Sweep, cutoff: datetime, options: BenchOptions, mode: str
) -> SweepJob:
    return SweepJob(
        endpoint_url=endpoints.dynamodb,
        region=endpoints.region,
        table=TABLE,
        keys=KEYS,
        sweep=sweep,
        total_segments=options.workers,
        cutoff=cutoff,
        page_size=options.page_size,
        delete_mode=options.raw_delete_mode if mode == "raw" else "item",
        deleters=options.baseline_deleters,
    )


def checked_run(
    mode: str,
    repeat: int,
    truth: list[SeededItem],
    cutoff: datetime,
    remaining: set[tuple[int, str]],
    work: Work,
) -> ModeRun:
    """The run against the seeded truth: what is left must be exactly what was fresh."""
    every = {item.key for item in truth}
    expired = {item.key for item in truth if item.expired(cutoff)}
    return ModeRun(
        mode=mode,
        repeat=repeat,
        items=len(every),
        expired=len(expired),
        deleted=len(every - remaining),
        wrongly_deleted=len((every - expired) - remaining),
        missed=len(expired & remaining),
        seconds=work.seconds,
        api_calls=work.api_calls,
    )


def sweep_segments(job: SweepJob) -> Work:
    """K processes, one segment each (raw and raw_item; the job says how to delete)."""
    jobs = [replace(job, segment=segment) for segment in range(job.total_segments)]
    return _run_processes("scavenger.tools.bench.sweepers:raw_process", jobs)


def sweep_baseline(job: SweepJob) -> Work:
    """One process with reader and deleter threads."""
    return _run_processes("scavenger.tools.bench.sweepers:baseline_process", [job])


def _table_mode(mode: str) -> Callable[[BenchOptions, int, BenchObserver], ModeRun]:
    return lambda options, repeat, observer: run_table_mode(mode, options, repeat, observer)


RUNNERS: dict[str, Callable[[BenchOptions, int, BenchObserver], ModeRun]] = {
    "raw": _table_mode("raw"),
    "raw_item": _table_mode("raw_item"),
    "fleet": run_fleet,
    "baseline": _table_mode("baseline"),
}
TABLE_SWEEPS: dict[str, TableSweep] = {
    "raw": sweep_segments,
    "raw_item": sweep_segments,
    "baseline": sweep_baseline,
}


def _run_processes(target: str, jobs: list[SweepJob]) -> Work:
    """Start one child per job, wait until all are ready, start them together, time them.

    Each child is a fresh interpreter (as a Lambda container would be): its
    startup and client construction happen before the start signal.
    """
    children: list[ChildProcess] = []
    try:
        for job in jobs:
            children.append(ChildProcess(target, job))
        for child in children:
            _expect(child, "ready", READY_TIMEOUT_SECONDS)
        started = time.monotonic()
        for child in children:
            child.connection.send("go")
        calls: Counter[str] = Counter()
        waiting = {child.connection: child for child in children}
        while waiting:
            for connection in multiprocessing.connection.wait(list(waiting)):
                child = waiting.pop(connection)  # type: ignore[call-overload]
                calls.update(_expect(child, "done", None))
        seconds = time.monotonic() - started
    finally:
        for child in children:
            child.kill()
    return Work(seconds, calls)


def _expect(child: ChildProcess, status: str, timeout: float | None) -> Any:
    connection = child.connection
    if timeout is not None and not connection.poll(timeout):
        raise RuntimeError(f"bench process {child.pid} was not {status} within {timeout:.0f}s")
    try:
        got, payload = connection.recv()
    except EOFError:
        raise RuntimeError(f"bench process {child.pid} exited before it was {status}") from None
    if got != status:
        raise RuntimeError(f"bench process {child.pid} failed: {payload}")
    return payload
