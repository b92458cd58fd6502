"""What a run costs at on-demand prices, from what the ledger recorded.

Default prices are us-east-1 list prices: DynamoDB on-demand after the
November 2024 reduction ($0.625 per million write request units, $0.125 per
million read request units), Lambda x86 ($0.0000166667 per GB-second, $0.20 per
million requests) and SQS FIFO ($0.50 per million requests). Free tiers are
ignored. Each can be overridden with an environment variable of the same name
in upper case, prefixed ``SCAVENGER_PRICE_`` (for example
``SCAVENGER_PRICE_WRITE_UNIT``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from scavenger.errors import ConfigError
from scavenger.ledger import Counts

MILLION = 1_000_000
DEFAULT_WORKER_MEMORY_MB = 512  # the CDK stack's default worker memory
# A segment message costs its send plus its share of a receive and of a delete
# (both batch up to 10): 1.2 requests, rounded up to 1.3 as batches do not always fill.
SQS_REQUESTS_PER_MESSAGE = 1.3
# Ledger writes per message beyond its pages: the claim/continuation or the
# finish, plus the run's done set.
LEDGER_WRITES_PER_MESSAGE = 2


@dataclass(frozen=True)
class Prices:
    write_unit: float = 0.625 / MILLION
    read_unit: float = 0.125 / MILLION
    lambda_gb_second: float = 0.0000166667
    lambda_request: float = 0.20 / MILLION
    sqs_request: float = 0.50 / MILLION

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Prices:
        env = os.environ if env is None else env
        values: dict[str, float] = {}
        for price in fields(cls):
            name = f"SCAVENGER_PRICE_{price.name.upper()}"
            if env.get(name):
                try:
                    values[price.name] = float(env[name])
                except ValueError:
                    raise ConfigError(f"{name}: {env[name]!r} is not a number") from None
        return cls(**values)


@dataclass(frozen=True)
class CostEstimate:
    dynamodb_reads: float
    dynamodb_writes: float
    lambda_compute: float
    lambda_requests: float
    sqs_requests: float

    @property
    def total(self) -> float:
        return (
            self.dynamodb_reads
            + self.dynamodb_writes
            + self.lambda_compute
            + self.lambda_requests
            + self.sqs_requests
        )

    def to_json(self) -> dict[str, Any]:
        data = {price.name: round(getattr(self, price.name), 6) for price in fields(self)}
        data["total"] = round(self.total, 6)
        return data


def estimate(
    counts: Counts,
    *,
    pages: int,
    prices: Prices | None = None,
    memory_mb: int = DEFAULT_WORKER_MEMORY_MB,
) -> CostEstimate:
    """Dollars for a run: the swept table's consumed units, ledger writes (one unit
    each: the items are small), worker GB-seconds, one Lambda request per message
    (batching can only lower it) and the SQS requests of each message."""
    prices = prices or Prices()
    ledger_writes = pages + LEDGER_WRITES_PER_MESSAGE * counts.messages
    return CostEstimate(
        dynamodb_reads=counts.read_units * prices.read_unit,
        dynamodb_writes=(counts.write_units + ledger_writes) * prices.write_unit,
        lambda_compute=counts.worker_ms / 1000 * memory_mb / 1024 * prices.lambda_gb_second,
        lambda_requests=counts.messages * prices.lambda_request,
        sqs_requests=counts.messages * SQS_REQUESTS_PER_MESSAGE * prices.sqs_request,
    )
