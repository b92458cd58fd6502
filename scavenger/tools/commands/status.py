"""``scavenger status [RUN_ID]``: recent runs per sweep, or one run's segments.

Read from the ledger; with a run id, the DLQ is looked at (messages received and
made visible again at once) to mark the segments whose message sits there.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from scavenger.cost import Prices, projected_run, write_units_text
from scavenger.dlq import DeadLetterQueue
from scavenger.errors import ScavengerError
from scavenger.settings import DEFAULT_PAGE_SIZE
from scavenger.tools.ops import watch
from scavenger.tools.ops.context import (
    Operator,
    aws_errors_as_user_errors,
    engine_logs_on_stderr,
    require_known_sweep,
)
from scavenger.tools.ops.output import ago, console, human_duration, print_json
from scavenger.tools.ops.status import RunDetail, RunSummary, recent_runs, run_detail

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_ERROR_SHOWN = 160


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="show this run's segments")
    parser.add_argument("--sweep", metavar="NAME", help="only this sweep's runs")
    parser.add_argument(
        "--limit", type=int, default=5, help="runs shown per sweep (default: %(default)s)"
    )
    watch.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.watch:
        return watch.run(args)
    if args.limit < 1:
        raise ScavengerError(f"--limit: {args.limit} must be at least 1")
    now = datetime.now(UTC)
    with aws_errors_as_user_errors(), engine_logs_on_stderr():
        operator = Operator.from_args(args)
        if args.run_id is None:
            runs = recent_runs(operator.ledger, per_sweep=args.limit, sweep=args.sweep)
            if args.sweep is not None and not runs:
                require_known_sweep(args.sweep, operator.config, os.environ)
            render_runs(runs, now)
            dashboard_footer(operator)
            if args.json:
                print_json(
                    {"runs": [s.to_json() for summaries in runs.values() for s in summaries]}
                )
            return 0
        dlq_url = operator.resources.optional_dlq_url()
        dlq = DeadLetterQueue(operator.sqs, dlq_url) if dlq_url else None
        detail = run_detail(operator.ledger, args.run_id, dlq, now)
        projection = real_run_cost(operator.dynamodb, detail.summary)
    render_detail(detail, now)
    cost = detail.summary.to_json()["cost"]
    console().print(
        f"cost: ${cost['total']:.6f} at on-demand prices (DynamoDB reads ${cost['dynamodb_reads']}"
        f", writes ${cost['dynamodb_writes']}, Lambda ${cost['lambda_compute']}"
        f" + ${cost['lambda_requests']}, SQS ${cost['sqs_requests']})"
    )
    if projection is not None:
        console().print(
            f"a real run would cost about ${projection['total']:.6f}"
            f" (deleting the {detail.summary.counts.expired} items this dry run found expired)"
        )
    dashboard_footer(operator)
    if args.json:
        print_json(detail.to_json() | {"real_run_cost": projection})
    return 0


def dashboard_footer(operator: Operator) -> None:
    """With ``--stack``: the deployment's CloudWatch dashboard (its ``DashboardName`` output)."""
    name = operator.resources.stack_outputs.get("DashboardName")
    if name:
        console().print(f"dashboard: {escape(name)} (CloudWatch console, Dashboards)")


def real_run_cost(dynamodb: DynamoDBClient, summary: RunSummary) -> dict[str, Any] | None:
    """For a finished dry run: the cost of deleting what it found, with the table's size."""
    run = summary.run
    if not run.dry_run or run.status != "done":
        return None
    description = dynamodb.describe_table(TableName=run.table)["Table"]
    return projected_run(
        table_items=int(description.get("ItemCount", 0)),
        table_bytes=int(description.get("TableSizeBytes", 0)),
        deletes=summary.counts.expired,
        segments=run.total_segments,
        page_size=DEFAULT_PAGE_SIZE,
        prices=Prices.from_env(),
    ).to_json()


def render_runs(runs: dict[str, list[RunSummary]], now: datetime) -> None:
    out = console()
    if not runs:
        out.print("no runs in the ledger")
        return
    table = Table(title="recent runs", title_justify="left")
    for column in ("sweep", "run", "started", "status", "segments", "failed", "deleted"):
        table.add_column(column, justify="right" if column in ("failed", "deleted") else "left")
    table.add_column("write units", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("last progress")
    for sweep, summaries in runs.items():
        for summary in summaries:
            run = summary.run
            table.add_row(
                sweep,
                run.run_id,
                run.created_at,
                run.status + (" (dry run)" if run.dry_run else ""),
                f"{run.segments_done}/{run.total_segments}",
                str(summary.failed),
                str(summary.counts.deleted),
                write_units_text(summary.counts),
                human_duration(summary.seconds),
                ago(summary.last_progress, now),
            )
    out.print(table)
    for summaries in runs.values():
        for summary in summaries:
            print_halt(summary)


def print_halt(summary: RunSummary) -> None:
    """A halted run's cause and the way out, under the table that lists it."""
    run = summary.run
    if run.status != "halted" or run.halt is None:
        return
    halt = run.halt
    console().print(
        f"run {run.run_id} is halted: {escape(halt.code)} on {halt.call} of "
        f"{escape(halt.resource)} (segment {halt.segment}, {halt.at}): "
        f"{escape(halt.message[:MAX_ERROR_SHOWN])}; {summary.halted} segment(s) halted. "
        f"Fix it, then `scavenger requeue {run.run_id} --halted`"
    )


def render_detail(detail: RunDetail, now: datetime) -> None:
    out = console()
    summary = detail.summary
    run = summary.run
    out.print(
        f"run {run.run_id}  sweep {run.sweep}  table {run.table}  {run.status}"
        f"{' (dry run)' if run.dry_run else ''}  "
        f"{run.segments_done}/{run.total_segments} segments done  "
        f"cutoff {run.cutoff}  started {run.created_at}  "
        f"duration {human_duration(summary.seconds)}"
    )
    print_halt(summary)
    out.print(segment_table(detail, now))
    totals = summary.counts
    out.print(
        f"totals: scanned {totals.scanned}  expired {totals.expired}  deleted {totals.deleted}  "
        f"skipped {totals.skipped}  unparseable {totals.unparseable}  "
        f"throttled {totals.throttled}"
    )
    out.print(f"write units: {escape(write_units_text(totals))}")
    in_dlq = sum(1 for row in detail.segments if row.in_dlq)
    if in_dlq:
        out.print(
            f"{in_dlq} segment(s) have a message in the DLQ: `scavenger redrive` sends them back"
        )
    if detail.dlq_note:
        out.print(detail.dlq_note)


def segment_table(detail: RunDetail, now: datetime) -> Table:
    """One row per segment: status, hop, counters, last update, DLQ, last error."""
    table = Table(show_lines=False)
    columns = ("seg", "status", "hop", "scanned", "expired", "deleted", "skipped")
    for column in (*columns, "unparseable", "throttled"):
        table.add_column(column, justify="left" if column == "status" else "right")
    table.add_column("updated")
    table.add_column("DLQ")
    table.add_column("last error", overflow="fold")
    for row in detail.segments:
        state, counts = row.state, row.state.counts
        dlq = ""
        if row.in_dlq:
            hops = ",".join(str(hop) for hop in row.dlq_hops)
            dlq = f"hop {hops}" + (" (stale)" if row.to_json()["dlq_stale"] else "")
        status = state.status + (" (requeue unsent)" if row.requeue_unconfirmed else "")
        counters = (counts.scanned, counts.expired, counts.deleted, counts.skipped)
        table.add_row(
            str(state.segment),
            status,
            str(state.hop),
            *(str(counter) for counter in (*counters, counts.unparseable, counts.throttled)),
            ago(state.updated_at, now),
            dlq,
            escape((state.last_error or "")[:MAX_ERROR_SHOWN]),
        )
    return table
