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
  (300 s), the settings a user deploying K concurrent workers gets; with no
  fleet write budget, as raw has none (the emulator has no capacity to protect).
- ``baseline``: one process, a reader thread per segment (K segments) feeding a
  bounded ``queue.Queue`` drained by a pool of deleter threads (4 per worker by
  default): the original single-function design, written plainly. Timed like raw.

The bench processes are in scavenger.tools.bench.sweepers.
"""

from __future__ import annotations

import multiprocessing.connection
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from scavenger.config import Sweep
from scavenger.tools.bench.options import MODES, BenchOptions
from scavenger.tools.bench.report import BenchReport, ModeRun, copied
from scavenger.tools.bench.sweepers import SweepJob
from scavenger.tools.bench.usage import CpuWatch, machine
from scavenger.tools.local.child import ChildProcess
from scavenger.tools.local.demo import (
    MAX_AGE,
    DemoOptions,
    QuietObserver,
    SeededItem,
    create_demo_table,
    remaining_keys,
    run_demo,
    seed_table,
    sweep_toml,
    write_sweep_config,
)
from scavenger.tools.local.emulator import Emulator, Endpoints

if TYPE_CHECKING:
    from scavenger.tools.bench.cpu import CpuResult

__all__ = ["MODES", "BenchOptions", "BenchReport", "ModeRun", "Work", "run_bench"]

TABLE = "Workers"  # the demo's table name on its own emulator
KEYS = ("WorkerId", "StartTime")
READY_TIMEOUT_SECONDS = 60.0
# The bench's options a fleet run passes to the demo under the same names.
DEMO_OPTIONS = (
    "items",
    "workers",
    "timeout_seconds",
    "dynamodb",
    "seed",
    "batch_size",
    "page_size",
)
# The demo's check of the fleet's run, under the names every mode's run has.
CHECKED = ("items", "expired", "deleted", "wrongly_deleted", "missed")
# The fleet's own figures a fleet run shows, in this order.
FLEET_FIGURES = ("invocations", "continuations", "cold_starts", "timeouts", "dlq")


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
            **copied(options, DEMO_OPTIONS),
            segments=options.fleet_segments,
            write_budget=0,  # no fleet write budget: as raw, how fast it can go
        ),
        observer,
    )
    return ModeRun(
        mode="fleet",
        repeat=repeat,
        **copied(report, CHECKED),
        seconds=report.seconds,
        api_calls=Counter(report.fleet.api_calls),
        detail={
            "segments": report.segments,
            **copied(report.fleet, FLEET_FIGURES),
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
            Path(workdir) / "scavenger.toml",
            sweep_toml(TABLE, options.workers, max_write_units_per_second=0),
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
