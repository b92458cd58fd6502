"""What a chaos run is asked to do (``scavenger demo --chaos`` and the tests)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from scavenger.errors import ScavengerError
from scavenger.tools.local.emulator import DynamoDBBackend
from scavenger.tools.local.fleet import check_timeout

DEFAULT_ITEMS = 2_000
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_PAGE_SIZE = 50
DEFAULT_MAX_RECEIVE_COUNT = 3


@dataclass(frozen=True)
class ChaosOptions:
    seed: int
    items: int = DEFAULT_ITEMS
    segments: int | None = None
    workers: int = 2
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    page_size: int = DEFAULT_PAGE_SIZE
    safety_margin_seconds: float | None = None
    deletes_per_second: int = 0
    retry_delay: int = 1
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT
    error_scale: float = 1.0
    in_process: bool = False
    dynamodb: DynamoDBBackend = "moto"
    log_path: Path | None = None

    def __post_init__(self) -> None:
        if self.items < 1:
            raise ScavengerError(f"--items: {self.items} must be at least 1")
        if self.workers < 1:
            raise ScavengerError(f"--workers: {self.workers} must be at least 1")
        if self.segments is not None and not 1 <= self.segments <= 10_000:
            raise ScavengerError(f"--segments: {self.segments} must be in 1..10000")
        with _environment(self.margin_environment()):
            check_timeout(self.timeout_seconds, 1)

    @property
    def total_segments(self) -> int:
        return self.segments if self.segments is not None else 2 * self.workers

    def margin_environment(self) -> dict[str, str]:
        """The workers' safety margin, when one is asked for."""
        if not self.safety_margin_seconds:
            return {}
        return {"SCAVENGER_SAFETY_MARGIN_SECONDS": str(self.safety_margin_seconds)}


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
