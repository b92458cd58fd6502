"""``scavenger plan``: what the scheduled planner does, now.

The sweeps come from ``--config`` (or ``SCAVENGER_SWEEPS``); the queue and the
ledger from resource discovery. A sweep whose previous run is still running is
not started again (exit 1, with the reason).
"""

from __future__ import annotations

import argparse
import os

from rich.markup import escape
from rich.table import Table

from planner.plan import Planner, PlanResult
from scavenger.errors import ConfigError
from scavenger.ops.context import (
    Operator,
    aws_errors_as_user_errors,
    configured_sweeps,
    engine_logs_on_stderr,
    load_optional_config,
)
from scavenger.ops.output import console, print_json


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
    render(results)
    if args.json:
        print_json({"runs": [result.to_json() for result in results]})
    return 0 if all(result.started for result in results) else 1


def render(results: list[PlanResult]) -> None:
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
