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

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from scavenger.errors import ConfigError
from scavenger.records import Counts

MILLION = 1_000_000
DEFAULT_WORKER_MEMORY_MB = 512  # the CDK stack's default worker memory
# A segment message costs its send plus its share of a receive and of a delete
# (both batch up to 10): 1.2 requests, rounded up to 1.3 as batches do not always fill.
SQS_REQUESTS_PER_MESSAGE = 1.3
# Ledger writes per message beyond its pages: the claim/continuation or the
# finish, plus the run's done set.
LEDGER_WRITES_PER_MESSAGE = 2


# Engines whose BatchExecuteStatement answers carry no ConsumedCapacity (measured:
# DynamoDB Local's DeleteItem reports the table's and each index's units, its
# BatchExecuteStatement none). There the worker counts one write unit per deleted item
# (the least a delete costs; items over 1 KB and index writes cost more on AWS).
CAPACITY_UNREPORTED = frozenset({"dynamodb-local"})


def write_units_basis(backend: str) -> str:
    """How a run's write units were counted on ``backend``, for the report."""
    if backend in CAPACITY_UNREPORTED:
        return "one per deleted item (DynamoDB Local's BatchExecuteStatement reports none)"
    return "consumed capacity as reported"


def write_units_text(counts: Counts) -> str:
    """``counts``' write units by table and by index, for people:
    ``"1,500 (table 500, index ByOwner 500, index ByStatus 500)"``."""
    parts = [f"table {counts.table_write_units:,.0f}"]
    parts += [
        f"index {name} {units:,.0f}" for name, units in sorted(counts.write_units_by_index.items())
    ]
    return f"{counts.write_units:,.0f} ({', '.join(parts)})"


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
    prices: Prices | None = None,
    memory_mb: int = DEFAULT_WORKER_MEMORY_MB,
) -> CostEstimate:
    """Dollars for a run: the swept table's consumed units, ledger writes (one unit
    each: the items are small), worker GB-seconds, one Lambda request per message
    (batching can only lower it) and the SQS requests of each message."""
    prices = prices or Prices()
    ledger_writes = counts.pages + LEDGER_WRITES_PER_MESSAGE * counts.messages
    return CostEstimate(
        dynamodb_reads=counts.read_units * prices.read_unit,
        dynamodb_writes=(counts.write_units + ledger_writes) * prices.write_unit,
        lambda_compute=counts.worker_ms / 1000 * memory_mb / 1024 * prices.lambda_gb_second,
        lambda_requests=counts.messages * prices.lambda_request,
        sqs_requests=counts.messages * SQS_REQUESTS_PER_MESSAGE * prices.sqs_request,
    )


# Assumed on AWS for projections only (what was measured is always preferred):
# a conditional DeleteItem from Lambda in the same region takes about 5 ms.
ASSUMED_DELETE_MS = 5.0
READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


def projected_run(
    *,
    table_items: int,
    table_bytes: int,
    deletes: int,
    segments: int,
    page_size: int,
    prices: Prices | None = None,
    memory_mb: int = DEFAULT_WORKER_MEMORY_MB,
) -> CostEstimate:
    """A real run's cost before it happens: the scan reads the whole table once (0.5
    read unit per 4 KB, eventually consistent), each delete writes ceil(item size /
    1 KB) units, and each delete takes ``ASSUMED_DELETE_MS`` of worker time."""
    item_bytes = table_bytes / table_items if table_items else 0.0
    units_per_delete = max(1, math.ceil(item_bytes / WRITE_UNIT_BYTES))
    counts = Counts(
        read_units=math.ceil(table_bytes / READ_UNIT_BYTES) * 0.5,
        write_units=float(deletes * units_per_delete),
        pages=max(segments, math.ceil(table_items / page_size)),
        messages=segments,
        worker_ms=round(deletes * ASSUMED_DELETE_MS),
    )
    return estimate(counts, prices=prices, memory_mb=memory_mb)
