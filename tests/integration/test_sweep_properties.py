"""Property: for any small table, page size, time budget and fault mix, the run deletes
exactly the items that were expired for the whole run, and counts each once."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scavenger import aws
from scavenger.config import parse_sweeps, sweeps_to_json
from scavenger.ledger import Ledger
from scavenger.plan import Planner
from scavenger.queue import SegmentQueue
from scavenger.runtime import lambda_runtime
from tests.conftest import LEDGER, FakeClock, FakeContext, drain, moto_stack
from tests.dataset import create_hash_table, remaining_keys
from tests.faults import ErrorInjector, StatementFaults, on_call, tick_per_call
from tests.integration.conftest import drop_tables
from tests.properties import fixture_examples
from tests.sweeps import sweep_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW = datetime(2026, 11, 23, 2, 0, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=48)
CUTOFF = NOW - MAX_AGE

item_strategy = st.fixed_dictionaries(
    {
        # seconds from the cutoff: negative is expired, zero and positive are fresh
        "delta": st.one_of(st.integers(-5, 5), st.integers(-(10**7), 10**7)),
        "garbage": st.sampled_from([None, None, None, None, "missing", "text", "wrong-type"]),
        "zone": st.integers(-14 * 60, 14 * 60),
        "completed": st.sampled_from([{"N": "1"}, {"S": "1"}, {"N": "0"}, None]),
        "refreshed": st.booleans(),
    }
)


def render(item, age_format):
    if item["garbage"] == "missing":
        return None
    if item["garbage"] == "text":
        return {"S": "soon"}
    if item["garbage"] == "wrong-type":
        return {"N": "7"} if age_format == "iso8601" else {"S": "7"}
    instant = CUTOFF + timedelta(seconds=item["delta"])
    if age_format == "epoch_seconds":
        return {"N": str(int(instant.timestamp()))}
    if age_format == "epoch_millis":
        return {"N": str(int(instant.timestamp()) * 1000)}
    return {"S": instant.astimezone(timezone(timedelta(minutes=item["zone"]))).isoformat()}


# moto verifies the item path; the batch path runs on AWS's own DynamoDB Local.
BACKENDS = {"moto": "item", "dynamodb-local": "batch"}


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "dynamodb-local":
        request.getfixturevalue("dynamodb_local")
    return name


@pytest.mark.parametrize("backend", sorted(BACKENDS), indirect=True)
@fixture_examples(25)
@given(
    items=st.lists(item_strategy, max_size=40),
    age_format=st.sampled_from(["iso8601", "epoch_seconds", "epoch_millis"]),
    segments=st.integers(1, 4),
    page_size=st.integers(1, 9),
    tick=st.sampled_from([0.0, 0.05, 0.3]),
    # a batch of k records needs k safety margins (1.5 s) plus time to work
    timeout=st.floats(10.0, 16.0),
    throttle_rate=st.sampled_from([0.0, 0.0, 0.15]),
)
def test_deleted_set_is_exactly_the_expired_set(
    monkeypatch, backend, items, age_format, segments, page_size, tick, timeout, throttle_rate
):
    mode = BACKENDS[backend]
    if backend == "dynamodb-local":
        drop_tables(os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    with moto_stack(monkeypatch) as stack:
        dynamodb, sqs = stack.dynamodb, stack.sqs
        create_hash_table(dynamodb, "Swept", key_type="N")
        doomed, refreshed, unparseable = set(), set(), 0
        for index, item in enumerate(items):
            record = {"id": {"N": str(index)}}
            age = render(item, age_format)
            if age is not None:
                record["ts"] = age
            if item["completed"] is not None:
                record["Completed"] = item["completed"]
            dynamodb.put_item(TableName="Swept", Item=record)
            matches = item["completed"] in ({"N": "1"}, {"S": "1"})
            expired = item["garbage"] is None and item["delta"] < 0
            unparseable += matches and item["garbage"] is not None
            if matches and expired:
                (refreshed if item["refreshed"] else doomed).add(index)

        spec = sweep_spec(
            "prop", age_format=age_format, segments=segments, completed=True, delete_mode=mode
        )
        sweeps = parse_sweeps([spec])
        monkeypatch.setenv("SCAVENGER_SWEEPS", sweeps_to_json(sweeps))
        monkeypatch.setenv("SCAVENGER_PAGE_SIZE", str(page_size))
        lambda_runtime.cache_clear()
        ledger = Ledger(dynamodb, LEDGER)
        planner = Planner(
            ledger=ledger,
            queue=SegmentQueue(sqs, stack.queue_url),
            dynamodb=dynamodb,
            clock=lambda: NOW,
        )
        run = planner.plan(sweeps[0])
        lambda_runtime().sleep = lambda seconds: None

        client = aws.client("dynamodb")
        clock = FakeClock()
        tick_per_call(client, lambda: clock.advance(tick))
        if throttle_rate:
            if mode == "batch":
                ErrorInjector(client, "BatchExecuteStatement", rate=throttle_rate, seed=len(items))
                StatementFaults(client, rate=throttle_rate, seed=len(items))
            else:
                ErrorInjector(client, "DeleteItem", rate=throttle_rate, seed=len(items))
            ErrorInjector(client, "Scan", rate=throttle_rate, seed=page_size)
        refresh_value = (
            {"S": "2999-01-01T00:00:00Z"} if age_format == "iso8601" else {"N": "99999999999999"}
        )

        def refresh(params):
            if "Statements" in params:  # the batch path: every statement's key
                for statement in params["Statements"]:
                    refresh({"Key": {"id": statement["Parameters"][0]}})
                return
            index = int(params["Key"]["id"]["N"])
            if index in refreshed:
                dynamodb.update_item(
                    TableName="Swept",
                    Key={"id": {"N": str(index)}},
                    UpdateExpression="SET ts = :fresh",
                    ExpressionAttributeValues={":fresh": refresh_value},
                )

        on_call(client, "BatchExecuteStatement" if mode == "batch" else "DeleteItem", refresh)

        drain(
            stack,
            context_factory=lambda: FakeContext(clock, timeout_seconds=timeout),
            max_invocations=2000,
        )

        left = {int(key[0][1]) for key in remaining_keys(dynamodb, "Swept")}
        assert left == set(range(len(items))) - doomed
        finished = ledger.get_run(run.run_id)
        assert finished.status == "done"
        totals = finished.totals
        assert totals.deleted == len(doomed)
        assert totals.skipped == len(refreshed)
        assert totals.expired == len(doomed) + len(refreshed)
        assert totals.unparseable == unparseable
        assert totals.scanned == len(items)
        aws.reset_clients()
