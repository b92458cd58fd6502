"""The worker paces its share of the fleet's write budget by the capacity consumed, halves
its rate when DynamoDB throttles it and grows it back slowly; a continuation carries the
rate reached. On moto, with a fake clock that the worker's sleeps advance."""

from __future__ import annotations

import json
from typing import Any

import pytest

from planner.handler import handler as planner_handler
from scavenger import aws
from scavenger.runtime import lambda_runtime
from tests.conftest import FakeClock, FakeContext, configure_sweeps, drain, roomy_context
from tests.dataset import remaining_keys
from tests.faults import error_response, tick_per_call
from tests.runs import seeded_table
from tests.sweeps import sweep_spec

pytestmark = pytest.mark.integration

SHARE = 20.0
SWEEP = sweep_spec("paced", "Paced", segments=1, max_write_units_per_second=SHARE)


class DeleteCalls:
    """When each DeleteItem call went out (fake time); those numbered in ``throttle`` fail
    with a throttling error instead."""

    def __init__(self, clock: FakeClock, throttle: range):
        self.clock = clock
        self.throttle = throttle
        self.sent: list[float] = []
        self.throttled: list[float] = []
        aws.client("dynamodb").meta.events.register("before-call.dynamodb.DeleteItem", self)

    def __call__(self, **_: Any) -> Any:
        if len(self.sent) + len(self.throttled) in self.throttle:
            self.throttled.append(self.clock.now)
            return error_response("ProvisionedThroughputExceededException", 400)
        self.sent.append(self.clock.now)
        return None

    def rate(self, start: float, end: float) -> float:
        return sum(1 for at in self.sent if start <= at < end) / (end - start)


@pytest.fixture
def paced(stack, monkeypatch) -> tuple[FakeClock, Any]:
    truth = seeded_table(stack.dynamodb, "Paced", "hash_string", count=800, with_where=False)
    monkeypatch.setenv("SCAVENGER_PAGE_SIZE", "100")
    configure_sweeps(monkeypatch, SWEEP)
    clock = FakeClock()
    tick_per_call(aws.client("dynamodb"), lambda: clock.advance(0.001))
    return clock, truth


def start(clock: FakeClock) -> list[dict[str, Any]]:
    (run,) = planner_handler({"sweep": "paced"}, roomy_context())["runs"]
    runtime = lambda_runtime()
    runtime.sleep = clock.advance
    runtime.clock = clock
    return [run]


def test_share_is_kept_then_halved_on_a_throttle_and_grown_back(stack, paced) -> None:
    clock, truth = paced
    start(clock)
    calls = DeleteCalls(clock, throttle=range(200, 203))  # one delete, throttled 3 times

    drain(stack, context_factory=lambda: FakeContext(clock, timeout_seconds=900))

    assert remaining_keys(stack.dynamodb, "Paced") == truth.kept
    assert len(calls.throttled) == 3
    cut = calls.throttled[-1]
    before = calls.rate(cut - 5, cut)
    after = calls.rate(cut, cut + 2)
    recovered = calls.rate(cut + 11, cut + 16)
    assert calls.sent[-1] > cut + 16, "the run ended before it could recover"
    assert SHARE * 0.9 <= before <= SHARE * 1.1, before
    assert after <= SHARE * 0.6, after  # halved (growing back by 1 a second)
    assert SHARE * 0.9 <= recovered <= SHARE * 1.1, recovered


def test_a_continuation_carries_the_rate_reached(stack, paced) -> None:
    clock, _ = paced
    start(clock)
    DeleteCalls(clock, throttle=range(50, 52))
    bodies: list[dict[str, Any]] = []

    def record(event: dict[str, Any], context: Any) -> dict[str, Any]:
        from worker.handler import handler

        bodies.extend(json.loads(record["body"]) for record in event["Records"])
        return handler(event, context)

    # 8 s invocations: the first one is cut a few seconds after its throttle.
    drain(stack, context_factory=lambda: FakeContext(clock, timeout_seconds=8), handler=record)

    first, second = bodies[0], bodies[1]
    assert first["wcu"] == second["wcu"] == SHARE and "wcu_rate" not in first
    assert second["hop"] == 1 and SHARE / 4 < second["wcu_rate"] < SHARE
