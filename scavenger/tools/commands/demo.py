"""``scavenger demo``: the whole system on a local emulator, checked against the truth.

Exit 0 only when nothing was wrongly deleted and nothing expired was missed.
The report goes to stdout (with ``--json``, the JSON object, and the table to
stderr); progress and notes go to stderr.
``--chaos`` runs the same sweep under injected faults, reproducibly from
``--seed`` (the package scavenger/tools/local/chaos/), and also requires that no message was
lost and that the ledger's totals match the table's real change.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    TaskID,
)
from rich.table import Table

from scavenger.errors import ScavengerError
from scavenger.tools.local.chaos import (
    DEFAULT_ITEMS as CHAOS_ITEMS,
)
from scavenger.tools.local.chaos import (
    DEFAULT_TIMEOUT_SECONDS as CHAOS_TIMEOUT_SECONDS,
)
from scavenger.tools.local.chaos import (
    ChaosOptions,
    ChaosReport,
)
from scavenger.tools.local.demo import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_ITEMS,
    DEFAULT_TIMEOUT_SECONDS,
    DemoOptions,
    DemoReport,
)
from scavenger.tools.local.emulator import DYNAMODB_BACKENDS, default_backend, require_backend
from scavenger.tools.local.fleet import default_workers
from scavenger.tools.ops.context import aws_errors_as_user_errors, engine_logs_on_stderr
from scavenger.tools.ops.output import ProgressBars, console, messages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--items",
        type=int,
        help=f"items to seed (default: {DEFAULT_ITEMS}; {CHAOS_ITEMS} with --chaos)",
    )
    parser.add_argument(
        "--segments",
        type=int,
        help="parallel-scan segments (default: 4 per worker; 2 per worker with --chaos)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="concurrent invocations, each in its own process (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="function timeout in seconds; a short one (5) shows continuations "
        f"(default: {DEFAULT_TIMEOUT_SECONDS:g}; {CHAOS_TIMEOUT_SECONDS:g} with --chaos)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="records per invocation, 1..10 (default: %(default)s, one invocation per "
        "segment message; Lambda's default is 10)",
    )
    parser.add_argument(
        "--dynamodb",
        choices=DYNAMODB_BACKENDS,
        help="DynamoDB emulator; SQS always runs on moto (default: dynamodb-local, AWS's "
        "own engine, where Java 17+ is installed; moto otherwise)",
    )
    parser.add_argument(
        "--seed", type=int, help="random seed for the demo data (and the faults, with --chaos)"
    )
    parser.add_argument(
        "--chaos",
        action="store_true",
        help="inject faults (kills, throttling, 500s, duplicates, out-of-order hops, a "
        "concurrent writer, poison messages), drive the run to completion and check it",
    )
    parser.add_argument(
        "--write-budget",
        type=float,
        metavar="WCU",
        help="the sweep's max_write_units_per_second: write units per second for the whole "
        "fleet (default: none set, so the planner takes half the table's capacity)",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        help="where the functions' logs go (default: a temporary file, kept only on failure)",
    )


def run(args: argparse.Namespace) -> int:
    if args.chaos:
        return run_chaos_demo(args)
    options = DemoOptions(
        items=DEFAULT_ITEMS if args.items is None else args.items,
        segments=args.segments,
        workers=args.workers,
        timeout_seconds=DEFAULT_TIMEOUT_SECONDS if args.timeout is None else args.timeout,
        batch_size=_batch_size(args.batch_size),
        dynamodb=args.dynamodb or "moto",
        endpoint_url=args.endpoint_url,
        region=args.region,
        seed=args.seed,
        log_path=args.log_file,
        write_budget=args.write_budget,
    )
    # After the checks: a mistake stays the only line, even where Java is missing.
    options = dataclasses.replace(
        options, dynamodb=default_backend(args.dynamodb, args.endpoint_url)
    )
    from scavenger.tools.local.demo import check_endpoint, run_demo  # imports boto3; after checks

    require_backend(options.dynamodb)
    if options.endpoint_url is not None:
        with aws_errors_as_user_errors():
            check_endpoint(options.endpoint_url, options.region)

    with observed() as observer:
        report = run_demo(options, observer)
    return present(report, report_table(report), as_json=args.json)


def run_chaos_demo(args: argparse.Namespace) -> int:
    """``demo --chaos``: real container processes, SIGKILLed; a seed is drawn if none is given."""
    from scavenger.errors import ScavengerError

    if _batch_size(args.batch_size) != 1:
        raise ScavengerError("--batch-size: --chaos runs one record per invocation")
    if args.endpoint_url:
        raise ScavengerError("--endpoint-url: --chaos starts its own emulator")
    options = ChaosOptions(
        seed=args.seed if args.seed is not None else secrets.randbelow(1_000_000),
        items=CHAOS_ITEMS if args.items is None else args.items,
        segments=args.segments,
        workers=args.workers,
        timeout_seconds=CHAOS_TIMEOUT_SECONDS if args.timeout is None else args.timeout,
        dynamodb=args.dynamodb or "moto",
        log_path=args.log_file,
    )
    options = dataclasses.replace(options, dynamodb=default_backend(args.dynamodb, None))
    from scavenger.tools.local.chaos import run_chaos  # imports boto3; after argument checks

    require_backend(options.dynamodb)
    with observed() as observer:
        report = run_chaos(options, observer)
    return present(report, chaos_table(report), as_json=args.json)


@contextlib.contextmanager
def observed() -> Iterator[ProgressObserver]:
    """Progress bars for a demo run, its AWS errors as one line, its logs named on failure."""
    with (
        logs_named_on_failure(),
        aws_errors_as_user_errors(),
        engine_logs_on_stderr(),
        ProgressObserver(messages()) as observer,
    ):
        yield observer


def present(report: DemoReport | ChaosReport, table: Table, *, as_json: bool) -> int:
    """The report's table (and JSON), the function logs it kept; 1 if it failed."""
    console().print(table)
    if report.log_path:
        messages().print(f"function logs: {report.log_path}", markup=False, highlight=False)
    if as_json:
        json.dump(report.as_dict(), sys.stdout)
        sys.stdout.write("\n")
    return 0 if report.ok else 1


@contextlib.contextmanager
def logs_named_on_failure() -> Iterator[None]:
    """A demo that stops early names the function logs it kept (a note on the exception):
    within a user error's one line, or on a line of its own after an interrupt."""
    try:
        yield
    except ScavengerError as exc:
        notes = _notes(exc)
        if notes:
            raise ScavengerError(f"{exc} ({'; '.join(notes)})") from exc
        raise
    except KeyboardInterrupt as exc:
        for note in _notes(exc):
            messages().print(note, markup=False, highlight=False)
        raise


def _notes(exc: BaseException | None) -> list[str]:
    """The notes of ``exc`` and of the exceptions it was raised from."""
    notes: list[str] = []
    while exc is not None:
        notes.extend(getattr(exc, "__notes__", []))
        exc = exc.__cause__
    return notes


def chaos_table(report: ChaosReport) -> Table:
    verdict = "[bold green]PASS" if report.ok else "[bold red]FAIL"
    table = Table(
        title=f"scavenger demo --chaos --seed {report.seed}: {verdict}[/]  run {report.run_id}",
        title_justify="left",
    )
    table.add_column("", style="bold")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    uncounted = sum(report.uncounted.values())
    rows: list[tuple[str, str, str]] = [
        ("items", f"{report.items:,}", "seeded into Workers"),
        ("expired", f"{report.expired:,}", "expired when seeded (the truth)"),
        ("deleted", f"{report.deleted:,}", "expired for the whole run, and gone"),
        ("refreshed", f"{report.refreshed:,}", "expired items made fresh by the writer (kept)"),
        (
            "inserted",
            f"{report.inserted_fresh + report.inserted_expired:,}",
            f"by the writer: {report.inserted_fresh} fresh (kept), {report.inserted_expired} "
            f"expired ({report.inserted_expired_deleted} of them deleted)",
        ),
        (
            "wrongly deleted",
            _flag(len(report.wrongly_deleted)),
            "fresh at any time during the run, yet gone (must be 0)",
        ),
        ("missed", _flag(len(report.missed)), "expired for the whole run, yet there (must be 0)"),
        (
            "lost",
            _flag(report.lost),
            "segments not done, messages left, segment messages in the DLQ (must be 0)",
        ),
        (
            "ledger deleted",
            f"{report.ledger_deleted:,}",
            f"+ {uncounted} deleted but never counted = {report.gone_by_run:,} gone",
        ),
        ("ledger gap", _flag(report.ledger_gap), "gone - uncounted - ledger deleted (must be 0)"),
        ("DLQ", f"{report.dlq_poison}/{report.poison_sent}", "poison messages in the DLQ"),
        (
            "recovery",
            f"{report.recovery_rounds}",
            f"rounds of redrive + fleet; {report.redriven} messages redriven",
        ),
        (
            "invocations",
            f"{report.fleet.invocations + report.recovery_invocations:,}",
            f"{report.fleet.cold_starts} cold starts, {report.fleet.function_errors} died, "
            f"{report.fleet.timeouts} killed at their timeout",
        ),
        ("seconds", f"{report.seconds:.1f}", "from creating the resources to the check"),
    ]
    for name, value, meaning in rows:
        table.add_row(name, value, meaning)
    table.add_section()
    for kind, count in sorted(report.faults.items()):
        table.add_row(f"  {kind}", f"{count:,}", FAULT_MEANINGS.get(kind.split(".")[0], ""))
    table.add_row("faults", f"{sum(report.faults.values()):,}", "injected, in all")
    for cause, count in sorted(report.uncounted.items()):
        table.add_row(f"  uncounted: {cause}", f"{count:,}", "deleted, not in the ledger")
    return table


FAULT_MEANINGS = {
    "kill": "container killed (SIGKILL) at that point",
    "throttle": "throttled before the call was sent",
    "error_500": "500 before the call was sent",
    "error_500_after_send": "500 after the call took effect",
    "duplicate_delivery": "a succeeded record delivered again",
    "out_of_order_replay": "an older hop sent after a newer one",
    "poison_message": "invalid body sent to the queue",
    "writer": "concurrent writer",
}


def _batch_size(value: int) -> int:
    from scavenger.errors import ScavengerError

    if not 1 <= value <= 10:
        raise ScavengerError(f"--batch-size: {value} must be in 1..10")
    return value


class ProgressObserver(ProgressBars):
    """Progress bars on stderr: items seeded, then segments done with deletes and rate."""

    def __init__(self, console: Console):
        super().__init__(console, label_width=9, transient=False)
        self._seed_task: TaskID | None = None
        self._sweep_task: TaskID | None = None

    def stage(self, text: str) -> None:
        self.progress.console.print(f"[dim]- {text}")

    def seeding(self, done: int, total: int) -> None:
        if self._seed_task is None:
            self._seed_task = self.progress.add_task("seeding", total=total, detail="items")
        self.progress.update(self._seed_task, completed=done)

    def sweeping(self, done_segments: int, total_segments: int, deleted: int) -> None:
        if self._sweep_task is None:
            self.sweep_started()
            self._sweep_task = self.progress.add_task("segments", total=total_segments, detail="")
        self.progress.update(
            self._sweep_task, completed=done_segments, detail=self.deletes_detail(deleted)
        )


def report_table(report: DemoReport) -> Table:
    data = report.as_dict()
    verdict = "[bold green]PASS" if report.ok else "[bold red]FAIL"
    table = Table(title=f"scavenger demo: {verdict}[/]  run {report.run_id}", title_justify="left")
    table.add_column("", style="bold")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    for name, value, meaning in _outcome_rows(report, data):
        table.add_row(name, value, meaning)
    calls = report.fleet.api_calls
    total = sum(calls.values())
    table.add_section()
    for operation, count in sorted(calls.items(), key=lambda pair: -pair[1]):
        table.add_row(f"  {operation}", f"{count:,}", "API calls by the workers")
    per_item = total / report.deleted if report.deleted else 0.0
    table.add_row("API calls", f"{total:,}", f"{per_item:.2f} per deleted item")
    table.add_section()
    _add_cost_rows(table, report, data)
    return table


def _outcome_rows(report: DemoReport, data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """What the run did and how fast: the truth, the ledger's counters, the fleet's."""
    fleet, timeout = report.fleet, report.timeout_seconds
    budget = f" (budget {report.write_budget:g})" if report.write_budget else ""
    return [
        ("items", f"{report.items:,}", "seeded into Workers"),
        ("expired", f"{report.expired:,}", 'old enough and Completed 1 or "1" (the truth)'),
        ("deleted", f"{report.deleted:,}", "gone from the table"),
        ("kept", f"{report.kept:,}", "still in the table"),
        ("wrongly deleted", _flag(report.wrongly_deleted), "not expired, yet gone (must be 0)"),
        ("missed", _flag(report.missed), "expired, yet still there (must be 0)"),
        ("skipped", f"{report.ledger.skipped:,}", "delete condition failed: changed or gone"),
        ("unparseable", f"{report.ledger.unparseable:,}", "bad StartExecutionTime, never deleted"),
        ("segments", f"{report.segments}", "parallel-scan segments (one message each)"),
        ("workers", f"{report.workers}", f"concurrent invocations, timeout {timeout:g}s"),
        (
            "invocations",
            f"{fleet.invocations:,}",
            f"{fleet.cold_starts} cold starts, {fleet.timeouts} killed at timeout",
        ),
        (
            "continuations",
            f"{fleet.continuations:,}",
            "messages with hop > 0 (out of time, resumed)",
        ),
        ("DLQ", _flag(fleet.dlq), "messages past maxReceiveCount"),
        ("seconds", f"{report.seconds:.1f}", "from planning to the run done"),
        ("deleted / s", f"{data['deleted_per_second']:,.1f}", "deleted / seconds"),
        (
            "write units / s",
            f"{data['write_units_per_second']:,.1f}",
            f"consumed write units / seconds{budget}",
        ),
    ]


def _add_cost_rows(table: Table, report: DemoReport, data: dict[str, Any]) -> None:
    """The write units by table and by index, then what the run would cost on AWS."""
    ledger = report.ledger
    table.add_row("write units", f"{ledger.write_units:,.0f}", data["write_units_basis"])
    table.add_row("  table", f"{ledger.table_write_units:,.0f}", "the table's own writes")
    for index, units in sorted(ledger.write_units_by_index.items()):
        table.add_row(f"  index {index}", f"{units:,.0f}", "this index's writes")
    cost = data["cost"]
    table.add_row(
        "cost estimate",
        f"${cost['total']:.4f}",
        "these units at AWS on-demand prices: "
        f"DynamoDB ${cost['dynamodb_reads'] + cost['dynamodb_writes']:.4f}, "
        f"Lambda ${cost['lambda_compute'] + cost['lambda_requests']:.4f}, "
        f"SQS ${cost['sqs_requests']:.4f}",
    )


def _flag(count: int) -> str:
    return f"[green]{count:,}" if count == 0 else f"[red]{count:,}"
