"""Write units by table and by index on AWS's own DynamoDB Local, for a swept table with a
global and a local secondary index.

Measured there: DeleteItem with ReturnConsumedCapacity INDEXES reports the table's unit
and one per index the item was in; BatchExecuteStatement reports nothing, so the batch
path counts one unit per deleted item and tells no index apart (cost.write_units_basis).
They need Java 17+ and DynamoDB Local (``make setup``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from planner.handler import handler as planner_handler
from scavenger import aws
from scavenger.events import EVENT_SOURCE
from scavenger.ledger import Ledger
from scavenger.records import INDEX_UNITS_PREFIX, Counts, RunRecord
from scavenger.runtime import lambda_runtime
from tests.conftest import LEDGER, REGION, Stack, configure_sweeps, drain, roomy_context
from tests.dataset import now
from tests.integration.test_batch_deletes import stack  # noqa: F401  (DynamoDB Local + moto SQS)
from tests.integration.test_run_reports import observed

pytestmark = pytest.mark.integration

TABLE = "Indexed"
GSI, LSI = "ByStatus", "ByOwnerAge"
EXPIRED, FRESH = 12, 8


def create_indexed_table(dynamodb: Any) -> None:
    """Key (owner, id); a GSI on status and an LSI on (owner, ts): every item is in both."""
    dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "id", "AttributeType": "N"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "ts", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "owner", "KeyType": "HASH"},
            {"AttributeName": "id", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": GSI,
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": LSI,
                "KeySchema": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "ts", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )
    old, young = now() - timedelta(days=10), now() - timedelta(hours=1)
    for n in range(EXPIRED + FRESH):
        ts = (old if n < EXPIRED else young).isoformat(timespec="seconds")
        dynamodb.put_item(
            TableName=TABLE,
            Item={
                "owner": {"S": f"o{n % 3}"},
                "id": {"N": str(n)},
                "status": {"S": "finished"},
                "ts": {"S": ts},
            },
        )


@pytest.fixture
def indexed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """The indexed table, reports on the default bus, and a queue a rule fills with them."""
    create_indexed_table(stack.dynamodb)
    monkeypatch.setenv("SCAVENGER_PAGE_SIZE", "5")
    monkeypatch.setenv("SCAVENGER_EVENT_BUS", "default")
    events = aws.client("events", region=REGION)
    url = stack.sqs.create_queue(QueueName="observer")["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    events.put_rule(
        Name="scavenger-runs",
        EventBusName="default",
        EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
    )
    events.put_targets(
        Rule="scavenger-runs",
        Targets=[{"Id": "observer", "Arn": arn["Attributes"]["QueueArn"]}],
    )
    return str(url)


def sweep_indexed(local: Stack, monkeypatch: pytest.MonkeyPatch, delete_mode: str) -> RunRecord:
    configure_sweeps(
        monkeypatch,
        {
            "name": "sweep",
            "table": TABLE,
            "age_attribute": "ts",
            "age_format": "iso8601",
            "max_age": "48h",
            "segments": 2,
            "delete_mode": delete_mode,
        },
    )
    (planned,) = planner_handler({"sweep": "sweep"}, roomy_context())["runs"]
    lambda_runtime().sleep = lambda seconds: None
    drain(local, context_factory=roomy_context)
    run = Ledger(local.dynamodb, LEDGER).get_run(str(planned["run_id"]))
    assert run is not None and run.status == "done" and run.totals is not None
    assert run.totals.deleted == EXPIRED
    return run


def status_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """``scavenger status ARGV --json``: its JSON (stdout), with the human table (stderr)
    under ``"human"``."""
    from scavenger.tools.cli import main

    capsys.readouterr()
    assert main(["status", *argv, "--json"]) == 0
    captured = capsys.readouterr()
    data: dict[str, Any] = json.loads(captured.out)
    return data | {"human": captured.err}


def test_item_deletes_count_each_index_in_ledger_status_and_event(
    stack: Stack,  # noqa: F811
    indexed: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = sweep_indexed(stack, monkeypatch, "item")

    totals = run.totals
    assert totals is not None
    by_index = {GSI: float(EXPIRED), LSI: float(EXPIRED)}
    assert dict(totals.write_units_by_index) == by_index
    assert totals.table_write_units == EXPIRED
    assert totals.write_units == 3 * EXPIRED  # the budget paces table and indexes together
    segments = Ledger(stack.dynamodb, LEDGER).list_segments(run.run_id)
    assert sum((state.counts for state in segments), Counts()) == totals
    raw = stack.dynamodb.query(
        TableName=LEDGER,
        KeyConditionExpression="run_id = :run AND begins_with(part, :seg)",
        ExpressionAttributeValues={":run": {"S": run.run_id}, ":seg": {"S": "SEG#"}},
    )["Items"]
    stored: dict[str, float] = {}
    for item in raw:  # one top-level attribute per index, on each segment item
        for name, value in item.items():
            if name.startswith(INDEX_UNITS_PREFIX):
                stored[name] = stored.get(name, 0.0) + float(value["N"])
    assert stored == {f"{INDEX_UNITS_PREFIX}{index}": units for index, units in by_index.items()}

    status = status_json(capsys, run.run_id)
    assert "write units: 36 (table 12, index ByOwnerAge 12, index ByStatus 12)" in status["human"]
    counts = status["run"]["counts"]
    assert counts["write_units"] == 3 * EXPIRED  # the key it always had, unchanged
    assert counts["table_write_units"] == EXPIRED
    assert counts["write_units_by_index"] == by_index
    assert sum(row["write_units_by_index"].get(GSI, 0) for row in status["segments"]) == EXPIRED
    (listed,) = status_json(capsys)["runs"]
    assert listed["counts"]["write_units_by_index"] == by_index

    (event,) = observed(stack, indexed)
    detail = event["detail"]
    assert detail["write_units"] == 3 * EXPIRED
    assert detail["table_write_units"] == EXPIRED
    assert detail["write_units_by_index"] == by_index
    assert detail["totals"]["write_units_by_index"] == by_index


def test_batch_deletes_count_one_unit_per_item_where_the_engine_reports_none(
    stack: Stack,  # noqa: F811
    indexed: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = sweep_indexed(stack, monkeypatch, "batch")

    totals = run.totals
    assert totals is not None
    assert totals.write_units == EXPIRED  # DynamoDB Local's BatchExecuteStatement: none
    assert dict(totals.write_units_by_index) == {}
    assert totals.table_write_units == EXPIRED
    (event,) = observed(stack, indexed)
    assert event["detail"]["write_units_by_index"] == {}
