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
    pacer.spent(5)  # half a second's worth was saved up
    assert pacer.delay() == 0
    pacer.spent(10)
    assert pacer.delay() == pytest.approx(1.0)
