"""``scavenger plan``: what the scheduled planner does, now.

The sweeps come from ``--config`` (or ``SCAVENGER_SWEEPS``); the queue and the
ledger from resource discovery. A sweep whose previous run is still running is
not started again (exit 1, with the reason).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.markup import escape
from rich.table import Table

from planner.plan import Planner, PlanResult
from scavenger.cost import Prices, projected_run
from scavenger.errors import ConfigError
from scavenger.ops.context import (
    Operator,
    aws_errors_as_user_errors,
    configured_sweeps,
    engine_logs_on_stderr,
    load_optional_config,
)
from scavenger.ops.output import console, print_json
from scavenger.settings import DEFAULT_PAGE_SIZE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sweep", metavar="NAME", help="plan only this sweep (default: all)")
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
    )


def run(args: argparse.Namespace) -> int:
    config = load_optional_config(args.config)
    sweeps = configured_sweeps(config, os.environ)
    if args.sweep is not None:
        known = {sweep.name: sweep for sweep in sweeps}
        if args.sweep not in known:
            raise ConfigError(
                f"--sweep {args.sweep}: not configured (configured: {', '.join(sorted(known))})"
            )
        sweeps = (known[args.sweep],)
    with aws_errors_as_user_errors(), engine_logs_on_stderr():
        operator = Operator.from_args(args)
        planner = Planner(ledger=operator.ledger, queue=operator.queue, dynamodb=operator.dynamodb)
        results = [planner.plan(sweep, dry_run=args.dry_run) for sweep in sweeps]
        tables = {sweep.name: sweep.table for sweep in sweeps}
        ceilings = {
            result.sweep: cost_ceiling(operator.dynamodb, tables[result.sweep], result)
            for result in results
            if result.started and result.dry_run
        }
    render(results, ceilings)
    if args.json:
        print_json(
            {
                "runs": [
                    result.to_json() | {"real_run_cost_ceiling": ceilings.get(result.sweep)}
                    for result in results
                ]
            }
        )
    return 0 if all(result.started for result in results) else 1


def cost_ceiling(dynamodb: Any, table: str, result: PlanResult) -> dict[str, Any]:
    """What a real run would cost at most: as if every item of the table were expired
    (DescribeTable's size and count, refreshed about every six hours)."""
    description = dynamodb.describe_table(TableName=table)["Table"]
    items = int(description.get("ItemCount", 0))
    return projected_run(
        table_items=items,
        table_bytes=int(description.get("TableSizeBytes", 0)),
        deletes=items,
        segments=result.segments,
        page_size=DEFAULT_PAGE_SIZE,
        prices=Prices.from_env(),
    ).to_json()


def render(results: list[PlanResult], ceilings: dict[str, dict[str, Any]]) -> None:
    table = Table(title="planned runs", title_justify="left")
    for column in ("sweep", "run", "segments", "cutoff", "dry run", "note"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result.sweep,
            result.run_id or "-",
            str(result.segments) if result.started else "-",
            result.cutoff or "-",
            "yes" if result.dry_run else "no",
            "started" if result.started else f"not started: {escape(result.reason)}",
        )
    console().print(table)
    for result in results:
        if result.dry_run and result.sizing:
            sizing = result.sizing
            line = (
                f"{result.sweep}: auto segments: {sizing['item_count']:,} items / "
                f"{sizing['items_per_segment']:,} a segment = {sizing['segments']:,} "
                f"({sizing['items_per_worker_second']:,} items per worker-second "
                f"({sizing['rate_source']}) x {sizing['target_seconds_per_segment']:g} s, "
                f"{sizing['target_seconds_per_segment'] / sizing['worker_timeout_seconds']:.0%} "
                f"of the {sizing['worker_timeout_seconds']} s worker timeout; "
                f"MaximumConcurrency {sizing['max_concurrency']}, write budget "
                f"{sizing['write_units_per_second'] or 'none'})"
            )
            console().print(escape(line))
    for sweep, ceiling in ceilings.items():
        console().print(
            f"{sweep}: a real run would cost at most ${ceiling['total']:.4f} (every item "
            "expired); once this dry run is done, `scavenger status RUN_ID` estimates it "
            "from the items the dry run found expired"
        )
