"""`scavenger plan` states the write budget it chose and why, and every segment message
carries its share: the budget over min(segments, the worker's maximum concurrency)."""

from __future__ import annotations

import json

import pytest

from scavenger.tools.cli import main
from tests.conftest import configure_sweeps
from tests.sweeps import sweep_spec

pytestmark = pytest.mark.integration

SWEEP = sweep_spec(table="Provisioned", segments=6)


@pytest.fixture
def provisioned(stack, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    stack.dynamodb.create_table(
        TableName="Provisioned",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 100, "WriteCapacityUnits": 400},
    )
    monkeypatch.setenv("SCAVENGER_MAX_CONCURRENCY", "4")
    return stack


def queued(stack) -> list[dict]:
    messages = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    )["Messages"]
    return [json.loads(message["Body"]) for message in messages]


def test_plan_without_budget_names_the_default_and_why(provisioned, monkeypatch, capsys) -> None:
    configure_sweeps(monkeypatch, SWEEP)
    capsys.readouterr()
    assert main(["plan", "--json"]) == 0
    captured = capsys.readouterr()

    text = " ".join((captured.out + captured.err).split())  # as printed, unwrapped
    assert "write budget 200 write units/s" in text
    assert "default: half the table's capacity, provisioned 400 write units" in text
    assert "shared by 4 worker(s) at once: 50 each" in text
    (run,) = json.loads(captured.out.splitlines()[-1])["runs"]
    assert run["write_budget"]["units_per_second"] == 200
    assert run["write_budget"]["workers"] == 4
    assert {body["wcu"] for body in queued(provisioned)} == {50.0}


def test_configured_budget_is_shared(provisioned, monkeypatch) -> None:
    configure_sweeps(monkeypatch, {**SWEEP, "max_write_units_per_second": 120})
    assert main(["plan"]) == 0
    assert {body["wcu"] for body in queued(provisioned)} == {30.0}


def test_zero_budget_sends_no_share(provisioned, monkeypatch, capsys) -> None:
    configure_sweeps(monkeypatch, {**SWEEP, "max_write_units_per_second": 0})
    assert main(["plan"]) == 0
    captured = capsys.readouterr()
    assert "no write budget" in captured.out + captured.err
    assert all("wcu" not in body for body in queued(provisioned))
