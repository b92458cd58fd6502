"""A worker's share of the fleet-wide write budget, paced by the capacity really consumed.

A token bucket in write units: each delete call takes what DynamoDB reported it
consumed (table and indexes; one unit per item where an emulator reports none),
and the next call waits until the bucket is back out of debt. A throttled call
halves the rate; each second without one gives back a twentieth of the share, so
the rate recovers in about 20 s. The rate reached is carried into the segment's
continuation (``SegmentMessage.wcu_rate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from scavenger.table import Meter

# Never slower than this fraction of the share (a halving spiral would stall the run).
FLOOR_FRACTION = 1 / 64
# Additive recovery: this fraction of the share per second without a throttle.
RECOVERY_PER_SECOND = 1 / 20
# At most this many seconds of unused budget are saved up: what a page's scan and
# checkpoint took from deleting is made up after it, without a lasting excess.
BURST_SECONDS = 2.0


class WritePacer:
    """Paces write calls to ``rate`` write units per second, at most ``share``."""

    def __init__(
        self,
        share: float,
        rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not share > 0:
            raise ValueError(f"share: {share} must be greater than zero")
        self.share = share
        self.floor = share * FLOOR_FRACTION
        self.rate = min(share, max(self.floor, rate if rate is not None else share))
        self.clock = clock
        self.tokens = 0.0
        self.updated = clock()
        self.throttles = 0

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self.updated)
        self.updated = now
        if self.rate < self.share:
            self.rate = min(self.share, self.rate + self.share * RECOVERY_PER_SECOND * elapsed)
        self.tokens = min(self.rate * BURST_SECONDS, self.tokens + self.rate * elapsed)

    def delay(self) -> float:
        """Seconds to wait before the next write call (0 when the bucket is not in debt)."""
        self._refill()
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def spent(self, units: float) -> None:
        """A write call consumed ``units`` write capacity units."""
        self._refill()
        self.tokens -= units

    def throttled(self, times: int = 1) -> None:
        """The table throttled ``times`` calls: halve the rate for each (down to the floor)."""
        if times <= 0:
            return
        self._refill()
        self.throttles += times
        self.rate = max(self.floor, self.rate / 2**times)
        self.tokens = min(self.tokens, 0.0)


class Ceiling(Protocol):
    def delay(self, count: int = 1) -> float: ...


class Pacing:
    """Both limits on a worker's deletes: before each delete call the longer wait of the
    per-worker ``deletes_per_second`` ceiling and of the message's share of the write
    budget; after it (``settle``), the units the call consumed and its throttled retries,
    read from the message's meter."""

    def __init__(self, ceiling: Ceiling, budget: WritePacer | None, meter: Meter):
        self.ceiling = ceiling
        self.budget = budget
        self.meter = meter
        self._before = meter.snapshot()
        self._count = 0

    def delay(self, count: int = 1) -> float:
        self._before = self.meter.snapshot()
        self._count = count
        wait = self.ceiling.delay(count)
        return max(wait, self.budget.delay()) if self.budget is not None else wait

    def settle(self) -> None:
        """After the call: one unit per delete where the backend reported no capacity."""
        if self.budget is None:
            return
        used = self.meter.since(self._before)
        self.budget.throttled(1 if used.retries else 0)  # once per throttled call
        self.budget.spent(used.write_units or float(self._count))

    @property
    def rate(self) -> float | None:
        """The budget rate reached, for the continuation (None without a budget)."""
        return None if self.budget is None else self.budget.rate
