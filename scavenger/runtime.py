"""What a Lambda container holds between invocations: settings, sweeps, clients.

Built on first use (never at import time) from the environment, then cached.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scavenger import aws
from scavenger.config import Sweep, load_sweeps_json
from scavenger.errors import ConfigError, FatalError
from scavenger.retry import RetryPolicy
from scavenger.settings import Settings
from scavenger.table import key_attributes

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient


@dataclass
class Runtime:
    settings: Settings
    sweeps: tuple[Sweep, ...]
    dynamodb: DynamoDBClient
    sqs: SQSClient
    sleep: Callable[[float], None] = time.sleep
    events: EventBridgeClient | None = None  # an EventBridge client when settings.event_bus is set
    clock: Callable[[], float] = time.monotonic  # the workers' pacing clock (tests set one)
    _keys: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def sweep(self, name: str) -> Sweep:
        for sweep in self.sweeps:
            if sweep.name == name:
                return sweep
        raise FatalError(f"sweep {name!r} is not in this function's SCAVENGER_SWEEPS")

    def knows_keys(self, table: str) -> bool:
        """Whether ``table``'s keys are looked up already (no call needed for them)."""
        return table in self._keys

    def key_attributes(self, table: str, retry: RetryPolicy) -> tuple[str, ...]:
        """The table's key names, looked up once per container."""
        if table not in self._keys:
            self._keys[table] = key_attributes(self.dynamodb, table, retry)
        return self._keys[table]

    @classmethod
    def from_env(cls) -> Runtime:
        settings = Settings.from_env()
        raw = os.environ.get("SCAVENGER_SWEEPS")
        if not raw:
            raise ConfigError("SCAVENGER_SWEEPS: environment variable is not set")
        return cls(
            settings=settings,
            sweeps=load_sweeps_json(raw),
            dynamodb=aws.client(
                "dynamodb", endpoint_url=settings.endpoint_url, region=settings.region
            ),
            sqs=aws.client("sqs", endpoint_url=settings.endpoint_url, region=settings.region),
            events=aws.client("events", endpoint_url=settings.endpoint_url, region=settings.region)
            if settings.event_bus
            else None,
        )


@functools.cache
def lambda_runtime() -> Runtime:
    """The container's runtime, read from the environment at the first invocation."""
    return Runtime.from_env()
