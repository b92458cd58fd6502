"""The one cached factory for boto3 clients.

Clients are created on first use, never at import time, so tests can start moto
first. Every client honours the endpoint and region settings.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

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
def _client(service: str, endpoint_url: str | None, region: str) -> Any:
    session = boto3.session.Session()
    return session.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=region,
        config=BOTO_CONFIG,
    )


def client(service: str, *, endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A shared client for ``service`` at the resolved endpoint and region."""
    return _client(service, resolve_endpoint(endpoint_url), resolve_region(region))


def reset_clients() -> None:
    """Forget cached clients (tests that restart the emulator call this)."""
    _client.cache_clear()
