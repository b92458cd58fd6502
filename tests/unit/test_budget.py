"""The fleet-wide write budget: the sweep's key, else half the table's write capacity,
shared among the workers that can run at once; and how sweeps and messages carry it."""

from __future__ import annotations

import json

import pytest

from scavenger.budget import ON_DEMAND_WRITE_UNITS, WriteBudget, choose_budget
from scavenger.config import parse_sweeps
from scavenger.errors import ConfigError, InvalidMessage
from scavenger.message import SegmentMessage
from tests.sweeps import DOCUMENTED_MESSAGE, sweep_spec

PROVISIONED = {
    "BillingModeSummary": {"BillingMode": "PROVISIONED"},
    "ProvisionedThroughput": {"ReadCapacityUnits": 50, "WriteCapacityUnits": 1000},
}
ON_DEMAND = {
    "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
    "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
}
SWEEP = sweep_spec("s", "Table")
MESSAGE = {**DOCUMENTED_MESSAGE, "sweep": "s", "table": "Table"}


@pytest.mark.parametrize(
    ("description", "budget", "why"),
    [
        (PROVISIONED, 500.0, "provisioned 1000 write units"),
        ({"ProvisionedThroughput": {"WriteCapacityUnits": 10}}, 5.0, "provisioned 10"),
        (
            {**ON_DEMAND, "WarmThroughput": {"WriteUnitsPerSecond": 12000, "Status": "ACTIVE"}},
            6000.0,
            "warm throughput 12000",
        ),
        (ON_DEMAND, ON_DEMAND_WRITE_UNITS / 2, "4000 write units/s assumed"),
        (
            {**ON_DEMAND, "OnDemandThroughput": {"MaxWriteRequestUnits": 600}},
            300.0,
            "maximum 600 write request units",
        ),
    ],
)
def test_absent_budget_is_half_the_tables_write_capacity(description, budget, why) -> None:
    chosen = choose_budget(None, description)
    assert chosen.units_per_second == budget
    assert why in chosen.reason and "default: half" in chosen.reason


def test_configured_budget_wins_and_zero_means_none() -> None:
    assert choose_budget(300, PROVISIONED).units_per_second == 300
    assert choose_budget(0, PROVISIONED).units_per_second is None


@pytest.mark.parametrize(
    ("segments", "concurrency", "workers"), [(64, 8, 8), (4, 50, 4), (16, None, 16), (1, 1, 1)]
)
def test_budget_is_shared_by_the_workers_that_can_run_at_once(
    segments, concurrency, workers
) -> None:
    shared = WriteBudget(400.0, "why").shared(segments, concurrency)
    assert shared.workers == workers
    assert shared.per_worker == pytest.approx(400 / workers)
    assert f"shared by {workers} worker(s)" in shared.describe()
    assert WriteBudget(None, "none").shared(segments, concurrency).per_worker is None


def test_sweep_key_is_optional_and_survives_the_lambda_environment() -> None:
    (absent,) = parse_sweeps([SWEEP])
    (given,) = parse_sweeps([{**SWEEP, "max_write_units_per_second": 400}])
    assert absent.max_write_units_per_second is None
    assert "max_write_units_per_second" not in absent.to_json()
    assert given.max_write_units_per_second == 400.0
    assert parse_sweeps([given.to_json()])[0] == given


@pytest.mark.parametrize("value", [-1, "400", True, float("nan"), 1e12])
def test_bad_budget_names_the_key(value) -> None:
    with pytest.raises(ConfigError, match="max_write_units_per_second"):
        parse_sweeps([{**SWEEP, "max_write_units_per_second": value}])


def test_message_share_is_optional_and_carried_into_continuations() -> None:
    plain = SegmentMessage.parse(json.dumps(MESSAGE))
    assert plain.wcu is None and "wcu" not in plain.to_json()
    shared = SegmentMessage.parse(json.dumps({**MESSAGE, "wcu": 12.5}))
    assert shared.wcu == 12.5
    slowed = shared.continuation(None, wcu_rate=6.25)
    again = SegmentMessage.parse(slowed.to_json())
    assert (again.wcu, again.wcu_rate, again.hop) == (12.5, 6.25, 1)
    assert again.continuation(None).wcu_rate == 6.25


@pytest.mark.parametrize("value", [0, -3, "12", True, 1e300, [1]])
def test_bad_message_share_is_poison(value) -> None:
    with pytest.raises(InvalidMessage, match="wcu"):
        SegmentMessage.parse(json.dumps({**MESSAGE, "wcu": value}))
