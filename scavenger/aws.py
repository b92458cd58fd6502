"""The one cached factory for boto3 clients.

Clients are created on first use, never at import time, so tests can start moto
first. Every client honours the endpoint and region settings.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Literal, overload

import boto3
from botocore.client import BaseClient
from botocore.config import Config as BotoConfig

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

# botocore does not retry: every call goes through tenacity (scavenger.retry), whose
# waits stay inside the invocation's time budget; a retry of botocore's own (up to
# a second of backoff) would not, and could carry a worker past its deadline.
BOTO_CONFIG = BotoConfig(
    retries={"mode": "standard", "max_attempts": 1},
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=32,
)
DEFAULT_REGION = "us-east-1"


def resolve_region(region: str | None = None) -> str:
    return (
        region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or (DEFAULT_REGION)
    )


def resolve_endpoint(endpoint_url: str | None = None) -> str | None:
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None


@functools.cache
def _client(service: str, endpoint_url: str | None, region: str) -> BaseClient:
    session = boto3.session.Session()
    made: BaseClient = session.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=region,
        config=BOTO_CONFIG,
    )
    return made


@overload
def client(
    service: Literal["dynamodb"], *, endpoint_url: str | None = None, region: str | None = None
) -> DynamoDBClient: ...
@overload
def client(
    service: Literal["sqs"], *, endpoint_url: str | None = None, region: str | None = None
) -> SQSClient: ...
@overload
def client(
    service: Literal["events"], *, endpoint_url: str | None = None, region: str | None = None
) -> EventBridgeClient: ...
@overload
def client(
    service: str, *, endpoint_url: str | None = None, region: str | None = None
) -> BaseClient: ...
def client(
    service: str, *, endpoint_url: str | None = None, region: str | None = None
) -> BaseClient:
    """A shared client for ``service`` at the resolved endpoint and region (typed by
    boto3-stubs for the services the runtime uses)."""
    return _client(service, resolve_endpoint(endpoint_url), resolve_region(region))


def reset_clients() -> None:
    """Forget cached clients (tests that restart the emulator call this)."""
    _client.cache_clear()
