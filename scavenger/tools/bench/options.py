"""What ``scavenger bench`` runs: its modes, defaults, targets and options."""

from __future__ import annotations

from dataclasses import dataclass

from scavenger.config import DeleteMode
from scavenger.errors import ScavengerError
from scavenger.settings import DEFAULT_PAGE_SIZE
from scavenger.tools.local.demo import DEFAULT_BATCH_SIZE
from scavenger.tools.local.emulator import DynamoDBBackend

MODES = ("raw", "raw_item", "fleet", "baseline")
DEFAULT_ITEMS = 10_000
DEFAULT_WORKERS = 4
# One run of each mode: on DynamoDB Local a table worth timing (the 50,000
# items) takes minutes per mode; --repeats N gives medians, the modes taking turns.
DEFAULT_REPEATS = 1
DEFAULT_SEED = 20261123
# The baseline's deleters: one DeleteItem per call against a whole page per Scan
# call, so deletes need several times the readers' concurrency to keep up.
DELETERS_PER_WORKER = 4
# Where raw deletes with batched PartiQL DELETEs: only on AWS's own engine (moto's
# PartiQL DELETE ignores its predicates and dynalite has none).
PARTIQL_BACKENDS = ("dynamodb-local",)
# The CDK stack's default worker timeout (infra/settings.py). The demo's 30 s is
# there to show continuations; a deployed fleet of K workers runs with this one.
FLEET_TIMEOUT_SECONDS = 300.0
# The targets, shown next to the figures (a benchmark reports, it does not fail).
TARGETS = {"fleet_vs_raw": 0.85, "fleet_vs_raw_item": 2.5, "fleet_vs_baseline": 2.5}
CALLS_PER_DELETED_ITEM_TARGET = 0.06
WORKER_CPU_VS_BARE_ITEM_TARGET = 0.3


@dataclass(frozen=True)
class BenchOptions:
    items: int = DEFAULT_ITEMS
    workers: int = DEFAULT_WORKERS
    repeats: int = DEFAULT_REPEATS
    dynamodb: DynamoDBBackend = "dynamodb-local"
    seed: int = DEFAULT_SEED
    modes: tuple[str, ...] = MODES
    segments: int | None = None  # the fleet's; None: K, as raw and baseline
    batch_size: int = DEFAULT_BATCH_SIZE
    page_size: int = DEFAULT_PAGE_SIZE
    deleters: int | None = None  # the baseline's pool; None: 4 per worker
    timeout_seconds: float = FLEET_TIMEOUT_SECONDS
    cpu: bool = True
    cpu_pages: int = 10
    cpu_page_size: int = 500
    cpu_repeats: int = 3

    def __post_init__(self) -> None:
        # Each number option: its flag, its value (None: unset), its least and its most.
        for flag, value, least, most in (
            ("--items", self.items, 1, None),
            ("--workers", self.workers, 1, None),
            ("--repeats", self.repeats, 1, None),
            ("--segments", self.segments, 1, 10_000),
            ("--batch-size", self.batch_size, 1, 10),
            ("--page-size", self.page_size, 1, 10_000),
            ("--deleters", self.deleters, 1, None),
        ):
            _check_range(flag, value, least, most)
        unknown = [mode for mode in self.modes if mode not in MODES]
        if unknown:
            raise ScavengerError(f"--mode: {unknown[0]!r} is not one of {', '.join(MODES)}")

    @property
    def fleet_segments(self) -> int:
        return self.segments if self.segments is not None else self.workers

    @property
    def raw_delete_mode(self) -> DeleteMode:
        return "batch" if self.dynamodb in PARTIQL_BACKENDS else "item"

    @property
    def baseline_deleters(self) -> int:
        return self.deleters if self.deleters is not None else DELETERS_PER_WORKER * self.workers

    def order(self, repeat: int) -> tuple[str, ...]:
        """This repeat's order of the modes: each goes first in turn."""
        shift = repeat % len(self.modes) if self.modes else 0
        return self.modes[shift:] + self.modes[:shift]


def _check_range(flag: str, value: int | None, least: int, most: int | None) -> None:
    if value is None:
        return
    if most is None and value < least:
        raise ScavengerError(f"{flag}: {value} must be at least {least}")
    if most is not None and not least <= value <= most:
        raise ScavengerError(f"{flag}: {value} must be in {least}..{most}")
