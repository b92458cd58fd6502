"""``scavenger status --watch [RUN_ID]``: one run, live, until it is no longer running.

Each refresh reads the run and its segments from the ledger (and the DLQ's depth):
segments done, items scanned against the table's ItemCount, deletes per second now
and on average, an ETA from the fraction scanned, throttles, failed or halted
segments. On a terminal the view redraws in place on stdout; with ``--json`` each
refresh is one JSON object on its own line (JSON Lines); otherwise one text line.
Ctrl-C stops it (exit 130, the terminal restored); the run is not touched.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from scavenger.dlq import DeadLetterQueue
from scavenger.errors import ScavengerError
from scavenger.expiry import format_instant
from scavenger.ledger import Ledger
from scavenger.records import Counts, RunRecord, SegmentState
from scavenger.tools.ops.context import Operator, aws_errors_as_user_errors, engine_logs_on_stderr
from scavenger.tools.ops.output import human_duration, print_json, seconds_between

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_INTERVAL = 2.0
# A segment still running is never shown as finished, however many items it scanned.
MAX_OPEN_FRACTION = 0.99


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--watch",
        action="store_true",
        help="refresh one run (RUN_ID, or the newest running) until it is done or Ctrl-C",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help="with --watch: seconds between refreshes (default: %(default)s)",
    )


@dataclass(frozen=True)
class Progress:
    """One refresh of a run, as shown and as printed in JSON Lines."""

    run_id: str
    sweep: str
    table: str
    status: str
    dry_run: bool
    segments_total: int
    segments_done: int
    segments_running: int
    segments_pending: int
    segments_failed: int
    segments_halted: int
    scanned: int
    table_items: int
    fraction_scanned: float
    deleted: int
    skipped: int
    throttled: int
    write_units: float
    deletes_per_second_now: float | None
    deletes_per_second_average: float | None
    eta_seconds: float | None
    elapsed_seconds: float | None
    dlq_messages: int | None
    at: str

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fraction_scanned(segments: Sequence[SegmentState], total: int, table_items: int) -> float:
    """How much of the table the run has scanned: a done segment counts whole; an open one
    by its scanned items against its share of the table's ItemCount (at most 0.99), or
    not at all when the count is unknown (then the fraction is that of segments done)."""
    if total <= 0:
        return 0.0
    per_segment = table_items / total
    covered = 0.0
    for state in segments:
        if state.status == "done":
            covered += 1.0
        elif per_segment > 0:
            covered += min(MAX_OPEN_FRACTION, state.counts.scanned / per_segment)
    return min(1.0, covered / total)


def observe(
    run: RunRecord,
    segments: Sequence[SegmentState],
    *,
    table_items: int,
    dlq_messages: int | None,
    previous: Progress | None,
    seconds_since_previous: float | None,
    now: datetime,
) -> Progress:
    """The refresh's figures from what the ledger says now (and the refresh before)."""
    counts = sum((state.counts for state in segments), Counts())
    by_status = Counter(state.status for state in segments)
    fraction = (
        1.0 if run.status == "done" else fraction_scanned(segments, run.total_segments, table_items)
    )
    elapsed = seconds_between(run.created_at, run.finished_at, now)
    rate_now = None
    if previous is not None and seconds_since_previous:
        rate_now = max(0.0, (counts.deleted - previous.deleted) / seconds_since_previous)
    average = counts.deleted / elapsed if elapsed else None
    eta = _eta(run, elapsed, fraction)
    return Progress(
        run_id=run.run_id,
        sweep=run.sweep,
        table=run.table,
        status=run.status,
        dry_run=run.dry_run,
        segments_total=run.total_segments,
        segments_done=by_status.get("done", 0),
        segments_running=by_status.get("running", 0),
        segments_pending=by_status.get("pending", 0),
        segments_failed=by_status.get("failed", 0),
        segments_halted=by_status.get("halted", 0),
        scanned=counts.scanned,
        table_items=table_items,
        fraction_scanned=round(fraction, 4),
        deleted=counts.deleted,
        skipped=counts.skipped,
        throttled=counts.throttled,
        write_units=counts.write_units,
        deletes_per_second_now=None if rate_now is None else round(rate_now, 1),
        deletes_per_second_average=None if average is None else round(average, 1),
        eta_seconds=None if eta is None else round(eta, 1),
        elapsed_seconds=elapsed,
        dlq_messages=dlq_messages,
        at=format_instant(now),
    )


def _eta(run: RunRecord, elapsed: float | None, fraction: float) -> float | None:
    """Seconds left for a running run, at its pace so far over the fraction scanned."""
    if run.status == "running" and elapsed and 0 < fraction < 1:
        return elapsed * (1 - fraction) / fraction
    return None


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def render(progress: Progress) -> Group:
    """The live view: a header, two bars (segments, items scanned), the figures."""
    p = progress
    header = Text(
        f"run {p.run_id}  sweep {p.sweep}  table {p.table}  {p.status}"
        f"{' (dry run)' if p.dry_run else ''}  elapsed {human_duration(p.elapsed_seconds)}",
        style="bold",
    )
    bars = Table.grid(padding=(0, 1))
    bars.add_column(width=9)
    bars.add_column(width=40)
    bars.add_column()
    bars.add_row(
        "segments",
        ProgressBar(total=max(1, p.segments_total), completed=p.segments_done, width=40),
        f"{p.segments_done}/{p.segments_total} done  {p.segments_running} running  "
        f"{p.segments_pending} pending",
    )
    bars.add_row(
        "scanned",
        ProgressBar(total=1.0, completed=p.fraction_scanned, width=40),
        f"{p.scanned:,} items of ~{p.table_items:,} ({p.fraction_scanned:.0%})",
    )
    eta = "-" if p.eta_seconds is None else human_duration(p.eta_seconds)
    figures = Text(
        f"deletes/s now {_rate(p.deletes_per_second_now)}  "
        f"average {_rate(p.deletes_per_second_average)}  ETA {eta}\n"
        f"deleted {p.deleted:,}  skipped {p.skipped:,}  throttled {p.throttled:,}  "
        f"write units {p.write_units:,.0f}\n"
        f"failed segments {p.segments_failed}  halted {p.segments_halted}  DLQ "
        f"{'-' if p.dlq_messages is None else p.dlq_messages}"
    )
    if p.segments_failed or p.segments_halted or p.dlq_messages:
        figures.stylize("yellow")
    return Group(header, bars, figures)


def one_line(progress: Progress) -> str:
    """The view for a pipe or a log file: one line per refresh."""
    p = progress
    eta = "-" if p.eta_seconds is None else human_duration(p.eta_seconds)
    return (
        f"{p.at} {p.run_id} {p.status} segments {p.segments_done}/{p.segments_total} "
        f"scanned {p.fraction_scanned:.0%} deleted {p.deleted} "
        f"deletes/s {_rate(p.deletes_per_second_now)} (avg {_rate(p.deletes_per_second_average)})"
        f" ETA {eta} throttled {p.throttled} failed {p.segments_failed} "
        f"halted {p.segments_halted} DLQ {'-' if p.dlq_messages is None else p.dlq_messages}"
    )


@dataclass
class Watcher:
    """Reads one run's progress refresh after refresh."""

    ledger: Ledger
    dynamodb: DynamoDBClient
    dlq: DeadLetterQueue | None
    run_id: str
    clock: Callable[[], float] = time.monotonic
    table_items: int | None = None
    previous: Progress | None = None
    previous_at: float | None = None

    def refresh(self) -> Progress:
        run = self.ledger.get_run(self.run_id)
        if run is None:
            raise ScavengerError(f"run {self.run_id} is not in the ledger {self.ledger.table_name}")
        if self.table_items is None:
            description = self.dynamodb.describe_table(TableName=run.table)["Table"]
            self.table_items = int(description.get("ItemCount", 0))
        segments = self.ledger.list_segments(self.run_id)
        dlq_messages = sum(self.dlq.counts()) if self.dlq is not None else None
        at = self.clock()
        progress = observe(
            run,
            segments,
            table_items=self.table_items,
            dlq_messages=dlq_messages,
            previous=self.previous,
            seconds_since_previous=None if self.previous_at is None else at - self.previous_at,
            now=datetime.now(UTC),
        )
        self.previous, self.previous_at = progress, at
        return progress


def newest_run(ledger: Ledger, sweep: str | None) -> str:
    """The newest running run (of ``sweep``), else the newest run at all."""
    runs = [run for run in ledger.list_runs() if sweep is None or run.sweep == sweep]
    if not runs:
        raise ScavengerError("no runs in the ledger to watch (`scavenger plan` starts one)")
    running = [run for run in runs if run.status == "running"]
    return (running or runs)[0].run_id


def run(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        raise ScavengerError(f"--interval: {args.interval} must be greater than zero")
    with aws_errors_as_user_errors(), engine_logs_on_stderr():
        operator = Operator.from_args(args)
        run_id = args.run_id or newest_run(operator.ledger, args.sweep)
        dlq_url = operator.resources.optional_dlq_url()
        watcher = Watcher(
            ledger=operator.ledger,
            dynamodb=operator.dynamodb,
            dlq=DeadLetterQueue(operator.sqs, dlq_url) if dlq_url else None,
            run_id=run_id,
        )
        if args.json:
            return _loop(watcher, args.interval, lambda p: print_json(p.to_json()))
        if not sys.stdout.isatty():
            return _loop(watcher, args.interval, lambda p: print(one_line(p), flush=True))
        console = Console(file=sys.stdout, highlight=False)
        progress = watcher.refresh()
        with Live(render(progress), console=console, auto_refresh=False) as live:
            return _loop(
                watcher,
                args.interval,
                lambda p: live.update(render(p), refresh=True),
                first=progress,
            )


def _loop(
    watcher: Watcher,
    interval: float,
    show: Callable[[Progress], None],
    first: Progress | None = None,
) -> int:
    """Show refreshes until the run is no longer running; 0, as ``status`` exits."""
    progress = first or watcher.refresh()
    while True:
        show(progress)
        if progress.finished:
            return 0
        time.sleep(interval)
        progress = watcher.refresh()
