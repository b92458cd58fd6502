"""``scavenger work``: a local worker fleet on the configured queue, until it drains.

The queue, the ledger and the sweeps come from the environment the Lambda
functions read (``SCAVENGER_QUEUE_URL``, ``SCAVENGER_LEDGER_TABLE``,
``SCAVENGER_SWEEPS``), or from ``--config`` (its ``[[sweeps]]`` and its
``[resources]`` table). It works against an emulator or a real account alike.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from scavenger import aws
from scavenger.config import Config, load_config, load_sweeps_json, sweeps_to_json
from scavenger.errors import ScavengerError
from scavenger.local.fleet import BATCH_SIZE, Fleet, FleetOptions, FleetStats, default_workers
from scavenger.local.function import DEFAULT_HANDLER

DEFAULT_TIMEOUT_SECONDS = 300.0  # the deployed worker's timeout (infra)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="concurrent invocations, each in its own process (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help="function timeout in seconds (default: %(default)g)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help="records per invocation, 1..10 (default: %(default)s, as Lambda's)",
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


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ScavengerError(f"--workers: {args.workers} must be at least 1")
    if not args.timeout > 0:
        raise ScavengerError(f"--timeout: {args.timeout:g} must be greater than zero")
    if not 1 <= args.batch_size <= BATCH_SIZE:
        raise ScavengerError(f"--batch-size: {args.batch_size} must be in 1..{BATCH_SIZE}")
    if args.retry_delay is not None and not 0 <= args.retry_delay <= 43200:
        raise ScavengerError(f"--retry-delay: {args.retry_delay} must be in 0..43200")
    environment = function_environment(
        os.environ, _config_if_any(args.config), args.endpoint_url, args.region
    )
    region = environment["AWS_REGION"]
    sqs = aws.client("sqs", endpoint_url=environment.get("AWS_ENDPOINT_URL"), region=region)
    options = FleetOptions(
        queue_url=environment["SCAVENGER_QUEUE_URL"],
        workers=args.workers,
        timeout_seconds=args.timeout,
        handler=args.handler,
        environment=environment,
        region=region,
        batch_size=args.batch_size,
        retry_delay=args.retry_delay,
        log_path=args.log_file,
    )
    console = Console(stderr=True)
    with console.status("starting the fleet") as status:

        def show(stats: FleetStats) -> None:
            status.update(
                f"{stats.invocations} invocations, {stats.succeeded} records done, "
                f"{stats.failed} failed, {stats.continuations} continuations"
            )

        try:
            fleet = Fleet(options, sqs)
        except (ClientError, BotoCoreError) as exc:
            raise ScavengerError(f"queue {options.queue_url}: {exc}") from None
        stats = fleet.run(on_tick=show)
    console.print(
        f"queue drained in {stats.seconds:.1f}s: {stats.invocations} invocations, "
        f"{stats.succeeded} records done, {stats.failed} failed, "
        f"{stats.continuations} continuations, {stats.timeouts} timeouts, DLQ {stats.dlq}"
    )
    if args.json:
        json.dump(stats.as_dict(), sys.stdout)
        sys.stdout.write("\n")
    return 0


def _config_if_any(path: str) -> Config | None:
    """The config file if there is one; without it the environment must say it all."""
    if not Path(path).exists() and os.environ.get("SCAVENGER_SWEEPS"):
        return None
    return load_config(path)


def function_environment(
    base: Mapping[str, str],
    config: Config | None,
    endpoint_url: str | None,
    region: str | None,
) -> dict[str, str]:
    """The environment the worker functions get, as the deployed ones would."""
    env = dict(base)
    resources = config.resources if config else {}
    for variable, key in (
        ("SCAVENGER_QUEUE_URL", "queue_url"),
        ("SCAVENGER_LEDGER_TABLE", "ledger_table"),
        ("SCAVENGER_DLQ_URL", "dlq_url"),
    ):
        value = env.get(variable) or resources.get(key)
        if value:
            env[variable] = value
        elif key != "dlq_url":
            raise ScavengerError(
                f"{variable}: not set, and the config has no [resources] {key} "
                "(set one of them to the deployed stack's value)"
            )
    if config is not None:
        env["SCAVENGER_SWEEPS"] = sweeps_to_json(config.sweeps)
    else:
        load_sweeps_json(env.get("SCAVENGER_SWEEPS", ""))  # fail here, not in every worker
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    env["AWS_REGION"] = aws.resolve_region(region or env.get("AWS_REGION"))
    return env
