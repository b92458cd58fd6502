"""``scavenger work``: a local worker fleet on the configured queue, until it drains.

The queue and the ledger are found as every operator command finds them
(``[resources]`` in the config, ``SCAVENGER_*`` variables, ``--stack``); the
sweeps come from the config or ``SCAVENGER_SWEEPS``. The functions get the
environment the deployed ones have. It works against an emulator or a real
account alike.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from scavenger import aws
from scavenger.config import sweeps_to_json
from scavenger.errors import ScavengerError
from scavenger.tools.local.fleet import (
    BATCH_SIZE,
    Fleet,
    FleetOptions,
    FleetStats,
    check_timeout,
    default_workers,
)
from scavenger.tools.local.function import DEFAULT_HANDLER
from scavenger.tools.ops.context import (
    Operator,
    aws_errors_as_user_errors,
    configured_sweeps,
    engine_logs_on_stderr,
)
from scavenger.tools.ops.output import console, messages, print_json

DEFAULT_TIMEOUT_SECONDS = 300.0  # the deployed worker's timeout (infra)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_fleet_arguments(
        parser,
        timeout=DEFAULT_TIMEOUT_SECONDS,
        timeout_help="function timeout in seconds (default: %(default)g)",
        batch_size=1,
        batch_size_help="records per invocation, 1..10 (default: %(default)s, as the deployed "
        "stack's)",
    )
    parser.add_argument(
        "--retry-delay",
        type=int,
        help="make failed records visible again after this many seconds "
        "(default: wait out the queue's visibility timeout, as Lambda does)",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        help="where the functions' logs go (default: discarded)",
    )
    parser.add_argument("--handler", default=DEFAULT_HANDLER, help=argparse.SUPPRESS)


def add_fleet_arguments(
    parser: argparse.ArgumentParser,
    *,
    timeout: float | None,
    timeout_help: str,
    batch_size: int,
    batch_size_help: str,
) -> None:
    """The fleet's ``--workers``, ``--timeout`` and ``--batch-size`` (``work`` and ``demo``)."""
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="concurrent invocations, each in its own process (default: %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=timeout, help=timeout_help)
    parser.add_argument("--batch-size", type=int, default=batch_size, help=batch_size_help)


def checked_batch_size(value: int) -> int:
    """``--batch-size``, once it is a batch the event source mapping could send."""
    if not 1 <= value <= BATCH_SIZE:
        raise ScavengerError(f"--batch-size: {value} must be in 1..{BATCH_SIZE}")
    return value


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ScavengerError(f"--workers: {args.workers} must be at least 1")
    check_timeout(args.timeout, checked_batch_size(args.batch_size))
    if args.retry_delay is not None and not 0 <= args.retry_delay <= 43200:
        raise ScavengerError(f"--retry-delay: {args.retry_delay} must be in 0..43200")
    with aws_errors_as_user_errors():
        operator = Operator.from_args(args)
        environment = function_environment(operator, args.endpoint_url, args.region)
        options = FleetOptions(
            queue_url=operator.resources.queue_url,
            workers=args.workers,
            timeout_seconds=args.timeout,
            handler=args.handler,
            environment=environment,
            region=environment["AWS_REGION"],
            batch_size=args.batch_size,
            retry_delay=args.retry_delay,
            log_path=args.log_file,
        )
        fleet = Fleet(options, operator.sqs)
    with messages().status("starting the fleet") as status:

        def show(stats: FleetStats) -> None:
            status.update(
                f"{stats.invocations} invocations, {stats.succeeded} records done, "
                f"{stats.failed} failed, {stats.continuations} continuations"
            )

        with engine_logs_on_stderr(), aws_errors_as_user_errors():
            stats = fleet.run(on_tick=show)
    console().print(
        f"queue drained in {stats.seconds:.1f}s: {stats.invocations} invocations, "
        f"{stats.succeeded} records done, {stats.failed} failed, "
        f"{stats.continuations} continuations, {stats.timeouts} timeouts, DLQ {stats.dlq}"
    )
    if args.json:
        print_json(stats.as_dict())
    return 0


def function_environment(
    operator: Operator, endpoint_url: str | None, region: str | None
) -> dict[str, str]:
    """The environment the worker functions get, as the deployed ones would."""
    env = dict(os.environ)
    env["SCAVENGER_SWEEPS"] = sweeps_to_json(configured_sweeps(operator.config, env))
    env["SCAVENGER_QUEUE_URL"] = operator.resources.queue_url
    env["SCAVENGER_LEDGER_TABLE"] = operator.resources.ledger_table
    dlq_url = operator.resources.optional_dlq_url()
    if dlq_url:
        env["SCAVENGER_DLQ_URL"] = dlq_url
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    env["AWS_REGION"] = aws.resolve_region(region or env.get("AWS_REGION"))
    return env
