"""What every operator command starts from: config, resources, clients, ledger.

AWS failures become one-line user errors here, so no command ends in a
traceback because of a wrong endpoint, a missing table or missing credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from scavenger import aws
from scavenger.config import Config, Sweep, load_config, load_sweeps_json
from scavenger.errors import (
    ConfigError,
    FatalError,
    RetryableError,
    ScavengerError,
    error_code,
)
from scavenger.ledger import Ledger
from scavenger.observability import logger
from scavenger.queue import SegmentQueue
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.tools.resources import Resources, discover

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

DEFAULT_CONFIG = "scavenger.toml"
CLI_ATTEMPTS = 4


def load_optional_config(path: str) -> Config | None:
    """The config file; the default path may be absent (resources come from elsewhere)."""
    if path == DEFAULT_CONFIG and not Path(path).exists():
        return None
    return load_config(path)


def configured_sweeps(config: Config | None, env: Mapping[str, str]) -> tuple[Sweep, ...]:
    """The sweeps from the config file, else from ``SCAVENGER_SWEEPS``."""
    if config is not None:
        return config.sweeps
    raw = env.get("SCAVENGER_SWEEPS")
    if not raw:
        raise ConfigError(
            f"sweeps: no {DEFAULT_CONFIG} here (pass --config PATH) and SCAVENGER_SWEEPS is not set"
        )
    return load_sweeps_json(raw)


def require_known_sweep(name: str, config: Config | None, env: Mapping[str, str]) -> None:
    """A ``--sweep`` with no runs must at least be configured: a typo is a mistake to
    name, not an empty answer. (A sweep since removed from the config still has runs.)"""
    try:
        known = sorted(sweep.name for sweep in configured_sweeps(config, env))
    except ConfigError:
        known = []
    if name not in known:
        listed = ", ".join(known) if known else f"none here ({DEFAULT_CONFIG} or SCAVENGER_SWEEPS)"
        raise ConfigError(
            f"--sweep {name}: no such sweep: not configured and no runs in the ledger "
            f"(configured: {listed})"
        )


@dataclass
class Operator:
    """One command's view of the deployment: clients, resources and the ledger."""

    config: Config | None
    resources: Resources
    dynamodb: DynamoDBClient
    sqs: SQSClient

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Operator:
        env = os.environ if env is None else env
        config = load_optional_config(args.config)
        endpoint, region = args.endpoint_url, args.region
        sqs = aws.client("sqs", endpoint_url=endpoint, region=region)
        resources = discover(
            config_resources=config.resources if config else {},
            env=env,
            stack=args.stack,
            cloudformation=lambda: aws.client(
                "cloudformation", endpoint_url=endpoint, region=region
            ),
            sqs=sqs,
        )
        return cls(
            config=config,
            resources=resources,
            dynamodb=aws.client("dynamodb", endpoint_url=endpoint, region=region),
            sqs=sqs,
        )

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.dynamodb, self.resources.ledger_table, cli_retry())

    @cached_property
    def queue(self) -> SegmentQueue:
        return SegmentQueue(self.sqs, self.resources.queue_url, cli_retry())


def cli_retry() -> RetryPolicy:
    """Throttling is retried, but an operator hears about an unreachable endpoint
    in seconds, not after the workers' full backoff."""
    return RetryPolicy(NoDeadline(), max_attempts=CLI_ATTEMPTS)


@contextlib.contextmanager
def aws_errors_as_user_errors() -> Iterator[None]:
    """AWS failures (already classified or raw botocore) as one-line ScavengerErrors."""
    try:
        yield
    except (FatalError, RetryableError) as exc:
        raise ScavengerError(str(exc)) from exc
    except ClientError as exc:
        operation = getattr(exc, "operation_name", "") or "AWS"
        message = exc.response.get("Error", {}).get("Message", "")
        raise ScavengerError(f"{operation}: {error_code(exc)}: {message}") from exc
    except BotoCoreError as exc:
        raise ScavengerError(str(exc)) from exc


class OneLineLogFormatter(logging.Formatter):
    """A log record as one human line (``warning: message (key=value, ...)``): stderr
    carries warnings for a person, not the JSON that Lambda's log pipeline reads."""

    STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        fields = ", ".join(
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in self.STANDARD and not key.startswith("_")
        )
        text = f"scavenger: {record.levelname.lower()}: {record.getMessage()}"
        return f"{text} ({fields})" if fields else text


@contextlib.contextmanager
def engine_logs_on_stderr(level: int = logging.WARNING) -> Iterator[None]:
    """The engine logs JSON to stdout (Lambda's convention); in the CLI, stdout carries
    only the requested output, so its warnings go to stderr, one human line each."""
    handlers = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.stream for h in handlers]
    formatters = [h.formatter for h in handlers]
    previous_level = logger.log_level
    for handler in handlers:
        handler.setStream(sys.stderr)
        handler.setFormatter(OneLineLogFormatter())
    logger.setLevel(level)
    try:
        yield
    finally:
        for handler, stream, formatter in zip(handlers, streams, formatters, strict=True):
            handler.setStream(stream)
            handler.setFormatter(formatter)
        logger.setLevel(previous_level)
