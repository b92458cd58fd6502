"""``scavenger plan``: what the scheduled planner does, now.

The sweeps come from ``--config`` (or ``SCAVENGER_SWEEPS``); the queue and the
ledger from resource discovery. A sweep whose previous run is still running is
not started again (exit 1, with the reason). Every sweep's ``where`` is read by
DynamoDB (a one-item Scan) before any run starts: a rejected one is exit 2 with
nothing written.

``--from-failed`` replays the scheduled runs that failed on AWS after Lambda's
retries, kept on the planner failure queue (``PlannerFailureQueueUrl``,
``SCAVENGER_PLANNER_FAILURES_URL``): each record is deleted only after its
replay succeeded (exit 1 if any is kept).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table

from scavenger.config import Sweep
from scavenger.cost import Prices, projected_run
from scavenger.errors import ConfigError, FatalError, RetryableError
from scavenger.plan import Planner, PlanRequest, PlanResult
from scavenger.settings import DEFAULT_PAGE_SIZE, max_concurrency
from scavenger.sizing import MAX_INVOCATIONS_PER_SEGMENT, MIN_ITEMS_PER_SEGMENT
from scavenger.tools.ops.context import (
    Operator,
    aws_errors_as_user_errors,
    configured_sweeps,
    engine_logs_on_stderr,
    load_optional_config,
)
from scavenger.tools.ops.failed_plans import Replay, replay_kept_failures
from scavenger.tools.ops.output import console, print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sweep", metavar="NAME", help="plan only this sweep (default: all)")
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
    )
    parser.add_argument(
        "--from-failed",
        action="store_true",
        help="replay the scheduled runs that failed on AWS after Lambda's retries (kept on "
        "the planner failure queue: stack output PlannerFailureQueueUrl or "
        "SCAVENGER_PLANNER_FAILURES_URL); each is removed only once its replay succeeded",
    )


def run(args: argparse.Namespace) -> int:
    config = load_optional_config(args.config)
    sweeps = configured_sweeps(config, os.environ)
    if args.from_failed:
        if args.sweep is not None or args.dry_run:
            raise ConfigError(
                "--from-failed replays each kept event as it was sent: drop --sweep and --dry-run"
            )
        return run_from_failed(args, sweeps)
    if args.sweep is not None:
        known = {sweep.name: sweep for sweep in sweeps}
        if args.sweep not in known:
            raise ConfigError(
                f"--sweep {args.sweep}: not configured (configured: {', '.join(sorted(known))})"
            )
        sweeps = (known[args.sweep],)
    # The planner's "sweep not started" warning is the table's note already: errors only.
    with aws_errors_as_user_errors(), engine_logs_on_stderr(logging.ERROR):
        results, ceilings = plan_sweeps(Operator.from_args(args), sweeps, args.dry_run)
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


def plan_sweeps(
    operator: Operator, sweeps: tuple[Sweep, ...], dry_run: bool
) -> tuple[list[PlanResult], dict[str, dict[str, Any]]]:
    """Plan each sweep (every ``where`` read by DynamoDB first); and for each dry run
    started, what a real run would cost at most, from the planner's DescribeTable."""
    planner = Planner(
        ledger=operator.ledger,
        queue=operator.queue,
        dynamodb=operator.dynamodb,
        max_concurrency=max_concurrency(),
    )
    for sweep in sweeps:  # every where DynamoDB rejects, before any run starts
        with contextlib.suppress(FatalError, RetryableError):
            planner.check_expression(sweep)  # (a table it cannot read: plan says so)
    results = []
    for sweep in sweeps:
        result = planner.plan(sweep, dry_run=dry_run)
        if not result.started:  # the row says what was asked for
            result = dataclasses.replace(result, dry_run=dry_run or sweep.dry_run)
        results.append(result)
    tables = {sweep.name: sweep.table for sweep in sweeps}
    ceilings = {
        result.sweep: cost_ceiling(planner.described(tables[result.sweep]), result)
        for result in results
        if result.started and result.dry_run
    }
    return results, ceilings


def run_from_failed(args: argparse.Namespace, sweeps: tuple[Any, ...]) -> int:
    known = {sweep.name: sweep for sweep in sweeps}
    with aws_errors_as_user_errors(), engine_logs_on_stderr():
        operator = Operator.from_args(args)
        queue_url = operator.resources.planner_failures_url
        planner = Planner(ledger=operator.ledger, queue=operator.queue, dynamodb=operator.dynamodb)

        def replay(request: PlanRequest) -> list[PlanResult]:
            if request.sweep is not None and request.sweep not in known:
                raise ConfigError(
                    f"sweep {request.sweep!r} is not configured "
                    f"(configured: {', '.join(sorted(known))})"
                )
            chosen = [known[request.sweep]] if request.sweep else list(sweeps)
            return [planner.plan(sweep, dry_run=request.dry_run) for sweep in chosen]

        outcomes = replay_kept_failures(operator.sqs, queue_url, replay)
    render_replays(outcomes)
    if args.json:
        print_json({"replayed": [outcome.to_json() for outcome in outcomes]})
    return 0 if all(outcome.deleted for outcome in outcomes) else 1


def render_replays(outcomes: list[Replay]) -> None:
    if not outcomes:
        console().print("no failed planner run is kept: nothing to replay")
        return
    table = Table(title="replayed planner failures", title_justify="left")
    for column in ("failed at", "original error", "replay", "record"):
        table.add_column(column)
    for outcome in outcomes:
        failure = outcome.failure
        if outcome.error:
            replay = f"failed: {outcome.error}"
        else:
            replay = "; ".join(
                f"{r.sweep}: run {r.run_id} started"
                if r.started
                else f"{r.sweep}: not started ({r.reason})"
                for r in outcome.results
            )
        table.add_row(
            escape(failure.failed_at if failure else "-"),
            escape((failure.error or failure.condition) if failure else "-"),
            escape(replay or "no sweep"),
            "deleted" if outcome.deleted else "kept",
        )
    console().print(table)


def cost_ceiling(description: Mapping[str, Any], result: PlanResult) -> dict[str, Any]:
    """What a real run would cost at most: as if every item of the table were expired
    (DescribeTable's size and count, refreshed about every six hours)."""
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
        if result.started and result.write_budget is not None:
            console().print(f"{result.sweep}: {escape(result.write_budget.describe())}")
        if result.dry_run and result.sizing:
            console().print(escape(f"{result.sweep}: {describe_sizing(result.sizing)}"))
    for sweep, ceiling in ceilings.items():
        console().print(
            f"{sweep}: a real run would cost at most ${ceiling['total']:.4f} (every item "
            "expired); once this dry run is done, `scavenger status RUN_ID` estimates it "
            "from the items the dry run found expired"
        )


def describe_sizing(sizing: dict[str, Any]) -> str:
    """How "auto" chose the segment count, in one line."""
    rate = (
        f"{sizing['items_per_worker_second']:,} items per worker-second ({sizing['rate_source']})"
    )
    if sizing.get("rule") == "budget":
        return (
            f"auto segments: {sizing['segments']:,}: the workers a write budget of "
            f"{sizing['write_units_per_second']:g} units/s keeps busy at {rate}, "
            f"{sizing['write_units_per_item']:g} write units an item ({sizing['budget_workers']:,} "
            f"wanted, MaximumConcurrency {sizing['max_concurrency']}; a segment holds at least "
            f"{MIN_ITEMS_PER_SEGMENT:,} items and at most {MAX_INVOCATIONS_PER_SEGMENT} x the "
            f"work of the {sizing['worker_timeout_seconds']} s worker timeout)"
        )
    return (
        f"auto segments: {sizing['item_count']:,} items / "
        f"{sizing['items_per_segment']:,} a segment = {sizing['segments']:,} "
        f"({rate} x {sizing['target_seconds_per_segment']:g} s, "
        f"{sizing['target_seconds_per_segment'] / sizing['worker_timeout_seconds']:.0%} "
        f"of the {sizing['worker_timeout_seconds']} s worker timeout; "
        f"MaximumConcurrency {sizing['max_concurrency']}, write budget "
        f"{sizing['write_units_per_second'] or 'none'})"
    )
