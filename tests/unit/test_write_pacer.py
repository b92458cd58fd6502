"""The worker's write pacer: its share of the budget by consumed units, halved on a
throttle and grown back slowly, never below its floor nor above its share."""

from __future__ import annotations

import pytest

from scavenger.pacing import FLOOR_FRACTION, WritePacer
from tests.conftest import FakeClock


def run_for(pacer: WritePacer, clock: FakeClock, seconds: float, units_per_call: float) -> float:
    """Calls as fast as the pacer lets them for ``seconds``; the units consumed."""
    end = clock.now + seconds
    consumed = 0.0
    while clock.now < end:
        clock.advance(pacer.delay())
        pacer.spent(units_per_call)
        consumed += units_per_call
        clock.advance(0.002)  # the call itself
    return consumed


@pytest.mark.parametrize("units_per_call", [1.0, 25.0, 50.0])
def test_consumed_units_per_second_stay_at_the_share(units_per_call) -> None:
    clock = FakeClock()
    pacer = WritePacer(75.0, clock=clock)
    consumed = run_for(pacer, clock, 60, units_per_call)
    assert consumed / 60 == pytest.approx(75.0, rel=0.05)


def test_a_throttle_halves_the_rate_which_recovers_slowly() -> None:
    clock = FakeClock()
    pacer = WritePacer(100.0, clock=clock)
    run_for(pacer, clock, 5, 10)
    pacer.throttled()
    assert pacer.rate == pytest.approx(50.0, rel=0.01)
    slow = run_for(pacer, clock, 2, 10) / 2
    assert slow < 65  # about half of 100, growing by 5 a second
    run_for(pacer, clock, 6, 10)
    assert 85 <= pacer.rate < 95  # growing back by 5 a second, not yet whole
    run_for(pacer, clock, 3, 10)
    assert pacer.rate == 100.0


def test_repeated_throttles_stop_at_the_floor_and_a_carried_rate_is_kept() -> None:
    clock = FakeClock()
    pacer = WritePacer(64.0, clock=clock)
    pacer.throttled(20)
    assert pacer.rate == 64.0 * FLOOR_FRACTION
    assert WritePacer(64.0, rate=20.0, clock=clock).rate == 20.0
    assert WritePacer(64.0, rate=500.0, clock=clock).rate == 64.0  # never above the share


def test_idle_time_saves_only_a_short_burst() -> None:
    clock = FakeClock()
    pacer = WritePacer(10.0, clock=clock)
    clock.advance(60)
    pacer.spent(15)  # two seconds' worth (20 units) were saved up, no more
    assert pacer.delay() == 0
    pacer.spent(15)
    assert pacer.delay() == pytest.approx(1.0)


class Ceiling:
    def __init__(self, wait: float = 0.0):
        self.wait = wait
        self.counts: list[int] = []

    def delay(self, count: int = 1) -> float:
        self.counts.append(count)
        return self.wait


def test_pacing_waits_for_the_slower_limit_and_settles_by_the_meter() -> None:
    from scavenger.pacing import Pacing
    from scavenger.table import Meter

    clock = FakeClock()
    meter = Meter()
    pacing = Pacing(Ceiling(0.25), WritePacer(10.0, clock=clock), meter)
    assert pacing.delay(25) == 0.25  # the ceiling's wait; the bucket is not in debt
    meter.write_units += 30.0  # the call reported 30 units (table + an index)
    pacing.settle()
    assert pacing.delay(25) == pytest.approx(3.0)  # 30 units of debt at 10/s

    clock.advance(3.0)
    assert pacing.delay(25) == 0.25  # out of debt: the ceiling's wait again
    pacing.settle()  # nothing reported (an emulator): one unit per delete
    assert pacing.budget is not None and pacing.budget.tokens == pytest.approx(-25.0)

    pacing.delay(1)
    meter.retries += 3  # one call, throttled three times: halved once
    meter.write_units += 1.0
    pacing.settle()
    assert pacing.rate == pytest.approx(5.0, rel=0.01)


def test_pacing_without_a_budget_is_the_ceiling_alone() -> None:
    from scavenger.pacing import Pacing
    from scavenger.table import Meter

    ceiling = Ceiling(0.1)
    pacing = Pacing(ceiling, None, Meter())
    assert pacing.delay(7) == 0.1 and ceiling.counts == [7]
    pacing.settle()
    assert pacing.rate is None
