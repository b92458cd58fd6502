"""``scavenger bench``: side-by-side throughput on the local emulator, and the worker's CPU.

Runs raw (the engine's ceiling for the fleet's way of deleting), raw_item (the
best per-item deleter), fleet (the demo) and baseline (one process with threads)
on identical freshly seeded tables, ``--repeats`` times each, then
the CPU bench on canned responses. Exit 0 when every run left exactly the
seeded truth's fresh items; 1 when a run is void (a benchmark of a wrong
result is no benchmark). The figures are reported, never judged by the exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace

from rich.console import Console
from rich.progress import (
    TaskID,
)
from rich.table import Table

from scavenger.errors import ScavengerError
from scavenger.settings import DEFAULT_PAGE_SIZE
from scavenger.tools.bench.options import (
    CALLS_PER_DELETED_ITEM_TARGET,
    DEFAULT_ITEMS,
    DEFAULT_REPEATS,
    DEFAULT_SEED,
    DEFAULT_WORKERS,
    FLEET_TIMEOUT_SECONDS,
    MODES,
    TARGETS,
    WORKER_CPU_VS_BARE_ITEM_TARGET,
    BenchOptions,
)
from scavenger.tools.bench.report import BenchReport, ModeRun
from scavenger.tools.local.demo import DEFAULT_BATCH_SIZE
from scavenger.tools.local.emulator import DYNAMODB_BACKENDS, default_backend, require_backend
from scavenger.tools.ops.context import engine_logs_on_stderr
from scavenger.tools.ops.output import ProgressBars, console, messages

MEANINGS = {
    "raw": "K processes, bare boto3: the ceiling",
    "raw_item": "K processes, bare boto3 DeleteItem",
    "fleet": "planner + K workers, as the demo",
    "baseline": "1 process, readers + deleters",
}
# Other programs' share of the CPUs during a run above which its figure is flagged.
DISTURBED_SHARE = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--items", type=int, default=DEFAULT_ITEMS, help="items per table (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help="K: raw and raw_item processes, fleet workers, baseline readers "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help="runs of each mode; figures are medians (default: %(default)s)",
    )
    parser.add_argument(
        "--dynamodb",
        choices=DYNAMODB_BACKENDS,
        help="DynamoDB emulator; SQS always runs on moto (default: dynamodb-local, AWS's "
        "own engine, where Java is; moto where it is not)",
    )
    parser.add_argument(
        "--mode",
        action="append",
        choices=MODES,
        dest="modes",
        help="run only this mode (repeatable; default: all four)",
    )
    add_setting_arguments(parser)
    cpu = parser.add_mutually_exclusive_group()
    cpu.add_argument(
        "--cpu-only", action="store_true", help="only the worker CPU bench (no emulator)"
    )
    cpu.add_argument("--no-cpu", action="store_true", help="skip the worker CPU bench")


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """The modes' settings: the fleet's segments, batches and timeout, the page size,
    the baseline's deleters, the data's seed."""
    parser.add_argument(
        "--segments",
        type=int,
        help="the fleet's parallel-scan segments (default: K, one per worker, as raw and "
        "baseline scan; the demo's own default is 4 per worker)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="the fleet's records per invocation, 1..10 (default: %(default)s)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=DEFAULT_PAGE_SIZE,
        help="Scan Limit for every mode, as SCAVENGER_PAGE_SIZE (default: %(default)s)",
    )
    parser.add_argument(
        "--deleters", type=int, help="the baseline's deleter threads (default: 4 per worker)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=FLEET_TIMEOUT_SECONDS,
        help="the fleet's function timeout in seconds (default: %(default)g, the stack's)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="random seed of the data (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    if args.endpoint_url:
        raise ScavengerError(
            "--endpoint-url: bench starts its own emulator for every run (fresh tables only)"
        )
    options = BenchOptions(
        items=args.items,
        workers=args.workers,
        repeats=args.repeats,
        dynamodb=default_backend(args.dynamodb, None),
        seed=args.seed,
        modes=() if args.cpu_only else tuple(dict.fromkeys(args.modes or MODES)),
        segments=args.segments,
        batch_size=args.batch_size,
        page_size=args.page_size,
        deleters=args.deleters,
        timeout_seconds=args.timeout,
        cpu=not args.no_cpu,
    )
    if options.modes:
        require_backend(options.dynamodb)
    from scavenger.tools.bench.throughput import measure_cpu, run_bench  # imports boto3

    progress, out = messages(), console()
    with engine_logs_on_stderr(), ProgressObserver(progress) as observer:
        report = run_bench(replace(options, cpu=False), observer)
    if options.cpu:
        # Outside engine_logs_on_stderr: the worker logs at its Lambda level, as it costs there.
        with progress.status("measuring the worker's CPU per deleted item (canned responses)"):
            report.cpu = measure_cpu(options)
    if options.modes:
        out.print(report_table(report))
    if report.cpu is not None:
        out.print(cpu_table(report))
    for run in report.runs:
        if not run.ok:
            out.print(
                f"[bold red]VOID[/] {run.mode} repeat {run.repeat + 1}: "
                f"{run.wrongly_deleted} wrongly deleted, {run.missed} missed"
            )
        log_file = run.detail.get("log_file")
        if log_file:
            progress.print(f"function logs of fleet repeat {run.repeat + 1}: {log_file}")
    if args.json:
        json.dump(report.as_dict(), sys.stdout)
        sys.stdout.write("\n")
    return 0 if report.ok else 1


class ProgressObserver(ProgressBars):
    """One line per run as it finishes; a bar for seeding and for the fleet's segments."""

    def __init__(self, console: Console):
        super().__init__(console, label_width=24, transient=True)
        self._task: TaskID | None = None
        self._label = ""

    def _show(self, description: str, completed: int, total: int | None, detail: str) -> None:
        if self._task is None:
            self._task = self.progress.add_task(description, total=total, detail=detail)
        self.progress.update(
            self._task, description=description, completed=completed, total=total, detail=detail
        )

    def run_started(self, mode: str, repeat: int, repeats: int) -> None:
        self._label = f"{mode} {repeat + 1}/{repeats}"
        if self._task is not None:
            self.progress.reset(self._task)
        self._show(self._label, 0, None, "starting")

    def run_finished(self, run: ModeRun) -> None:
        verdict = "[green]ok" if run.ok else "[bold red]VOID"
        self.console.print(
            f"{run.mode:<8} repeat {run.repeat + 1}: {run.deleted:,} deleted in "
            f"{run.seconds:.1f}s = {run.deletes_per_second:,.1f}/s  {verdict}"
        )
        cpus = len(os.sched_getaffinity(0))
        if run.usage is not None and run.usage.other_share(cpus) > DISTURBED_SHARE:
            self.console.print(
                f"[yellow]  other programs used {run.usage.other_seconds:.0f} CPU-seconds "
                f"({run.usage.other_share(cpus):.0%} of the machine) during this run: "
                "its figure is disturbed"
            )

    def stage(self, text: str) -> None:
        if text.startswith("sweeping"):
            self.sweep_started()
        if self._task is not None:
            self.progress.update(self._task, detail=text)
        else:
            self.console.print(f"[dim]- {text}")

    def seeding(self, done: int, total: int) -> None:
        self._show(f"{self._label} seeding", done, total, "items")

    def sweeping(self, done_segments: int, total_segments: int, deleted: int) -> None:
        self._show(
            f"{self._label} segments", done_segments, total_segments, self.deletes_detail(deleted)
        )


def _figure(value: float | None, digits: int = 1) -> str:
    return "[red]void" if value is None else f"{value:,.{digits}f}"


def _versus(value: float | None, target: float, *, at_most: bool = False) -> str:
    if value is None:
        return "[red]void"
    met = value <= target if at_most else value >= target
    colour = "green" if met else "yellow"
    relation = "<=" if at_most else ">="
    return f"[{colour}]{value:.3f}[/] (target {relation} {target:g})"


def report_table(report: BenchReport) -> Table:
    options = report.options
    verdict = "[bold green]all runs correct" if report.ok else "[bold red]VOID runs"
    table = Table(
        title=(
            f"scavenger bench: {verdict}[/]  {options.items:,} items, K = {options.workers}, "
            f"DynamoDB on {options.dynamodb}, "
            + ("one run each" if options.repeats == 1 else f"median of {options.repeats}")
        ),
        title_justify="left",
    )
    table.add_column("mode", style="bold")
    table.add_column("deletes / s", justify="right")
    table.add_column("per repeat", justify="right")
    table.add_column("calls / deleted", justify="right")
    table.add_column("correct", justify="center")
    table.add_column("what it is", style="dim")
    for mode in options.modes:
        runs = report.runs_of(mode)
        per_repeat = "  ".join(
            f"{run.deletes_per_second:,.0f}" if run.ok else "[red]void" for run in runs
        )
        calls = [run.calls_per_deleted_item for run in runs if run.calls_per_deleted_item]
        correct = "[green]yes" if all(run.ok for run in runs) else "[red]NO"
        table.add_row(
            mode,
            _figure(report.median(mode)),
            per_repeat,
            f"{max(calls):.3f}" if calls else "-",
            correct,
            MEANINGS[mode],
        )
    if "fleet" in options.modes:
        add_ratios(table, report)
    table.caption = caption(report)
    table.caption_justify = "left"
    return table


def add_ratios(table: Table, report: BenchReport) -> None:
    """The fleet against each other mode that ran, and its calls per deleted item."""
    table.add_section()
    for other in ("raw", "raw_item", "baseline"):
        if other in report.options.modes:
            table.add_row(
                f"fleet / {other}",
                _versus(report.ratio("fleet", other), TARGETS[f"fleet_vs_{other}"]),
            )
    table.add_row(
        "fleet calls / deleted",
        _versus(report.calls_per_deleted_item, CALLS_PER_DELETED_ITEM_TARGET, at_most=True),
    )


def caption(report: BenchReport) -> str:
    options, settings = report.options, report.settings()
    return (
        f"page size {options.page_size}; raw deletes: {settings['raw_delete']}; "
        f"fleet: {settings['fleet_segments']} segments, batch size {options.batch_size}, "
        f"deletes: {settings['fleet_delete']}, no write budget; baseline: {options.workers} "
        f"readers, {settings['baseline_deleter_threads']} deleters; "
        f"{report.machine['cpus']} CPUs ({report.machine['cpu_model']})"
    )


def cpu_table(report: BenchReport) -> Table:
    assert report.cpu is not None
    cpu = report.cpu
    table = Table(
        title=f"worker CPU per deleted item, canned responses ({cpu.items:,} items)",
        title_justify="left",
    )
    table.add_column("", style="bold")
    table.add_column("µs CPU / deleted item", justify="right")
    table.add_row("worker handler", f"{cpu.worker_us_per_item:,.1f}")
    table.add_row("bare boto3 Scan + DeleteItem", f"{cpu.bare_us_per_item:,.1f}")
    table.add_row("worker / bare", _versus(cpu.ratio, WORKER_CPU_VS_BARE_ITEM_TARGET, at_most=True))
    return table
