"""What ``scavenger demo`` is asked for, checked before anything starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scavenger.errors import ScavengerError
from scavenger.tools.local.emulator import DynamoDBBackend
from scavenger.tools.local.fleet import check_timeout, default_workers

DEFAULT_ITEMS = 10_000  # about a minute on 2 cores with moto (~190 deletes/s)
DEFAULT_TIMEOUT_SECONDS = 30.0
# One invocation per segment message, as DESIGN.md plans; Lambda's default is 10.
DEFAULT_BATCH_SIZE = 1


@dataclass(frozen=True)
class DemoOptions:
    items: int = DEFAULT_ITEMS
    segments: int | None = None
    workers: int = field(default_factory=default_workers)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    dynamodb: DynamoDBBackend = "moto"
    endpoint_url: str | None = None
    region: str | None = None
    seed: int | None = None
    retry_delay: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    page_size: int | None = None
    log_path: Path | None = None
    write_budget: float | None = None  # the sweep's max_write_units_per_second

    def __post_init__(self) -> None:
        if self.write_budget is not None and self.write_budget < 0:  # 0: no budget
            raise ScavengerError(f"--write-budget: {self.write_budget} must be at least zero")
        if self.items < 1:
            raise ScavengerError(f"--items: {self.items} must be at least 1")
        if self.segments is not None and not 1 <= self.segments <= 10_000:
            raise ScavengerError(f"--segments: {self.segments} must be in 1..10000")
        if self.workers < 1:
            raise ScavengerError(f"--workers: {self.workers} must be at least 1")
        check_timeout(self.timeout_seconds, self.batch_size)

    @property
    def total_segments(self) -> int:
        return self.segments if self.segments is not None else 4 * self.workers
