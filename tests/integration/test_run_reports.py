"""The run report on moto's EventBridge, observed through a rule that targets an SQS queue:
one event per finished run, under duplicate deliveries and a crash between closing the run
and publishing; a crash between publishing and recording it gives a second copy (at least
once, as scavenger/events.py says)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scavenger import aws
from scavenger.events import DETAIL_TYPES, EVENT_SOURCE
from scavenger.ledger import Ledger
from scavenger.runtime import lambda_runtime
from tests.conftest import LEDGER, REGION, drain, roomy_context
from tests.runs import Crash, seed_sweep, start_run
from tests.sweeps import sweep_spec
from worker.handler import handler as worker_handler

pytestmark = pytest.mark.integration

TABLE = "Swept"
SWEEP = sweep_spec(table=TABLE, segments=3)


@pytest.fixture
def observer(stack, monkeypatch) -> str:
    """A swept table, the sweep, reports on the default bus, and a queue that a rule
    on that bus fills with every Scavenger event."""
    monkeypatch.setenv("SCAVENGER_EVENT_BUS", "default")
    seed_sweep(stack, monkeypatch, SWEEP, count=60, page_size=7)
    events = aws.client("events", region=REGION)
    url = stack.sqs.create_queue(QueueName="observer")["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="scavenger-runs",
        EventBusName="default",
        EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
    )
    events.put_targets(Rule="scavenger-runs", Targets=[{"Id": "observer", "Arn": arn}])
    return str(url)


def observed(stack, url: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        messages = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def send_again(stack, messages: list[dict[str, Any]], tag: str) -> None:
    """Each received segment message sent once more, to its own group."""
    for index, message in enumerate(messages):
        body = json.loads(message["Body"])
        stack.sqs.send_message(
            QueueUrl=stack.queue_url,
            MessageBody=message["Body"],
            MessageGroupId=f"{body['sweep']}#{body['segment']}",
            MessageDeduplicationId=f"{tag}-{index}",
        )


def crashing_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An invocation that dies acknowledges nothing: every record comes back."""
    try:
        return worker_handler(event, context)
    except Crash:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}


def crash_once_on(operation: str, when: Any = lambda params: True) -> dict[str, int]:
    """The first ``operation`` call of the worker's clients matching ``when`` kills it."""
    service = "events" if operation == "PutEvents" else "dynamodb"
    state = {"crashes": 0}

    def hook(params: dict[str, Any], **_: Any) -> None:
        if not state["crashes"] and when(params):
            state["crashes"] += 1
            raise Crash(operation)

    aws.client(service).meta.events.register(f"before-parameter-build.{service}.{operation}", hook)
    return state


def test_a_finished_run_is_reported_once_with_its_totals(stack, observer) -> None:
    run_id = start_run()
    drain(stack, context_factory=roomy_context)

    (event,) = observed(stack, observer)
    run = Ledger(stack.dynamodb, LEDGER).get_run(run_id)
    assert run is not None and run.status == "done" and run.totals is not None
    assert event["source"] == EVENT_SOURCE
    assert event["detail-type"] == DETAIL_TYPES["done"] == "Scavenger Run Finished"
    detail = event["detail"]
    assert detail["run_id"] == run_id
    assert (detail["sweep"], detail["table"], detail["status"]) == ("sweep", TABLE, "done")
    assert detail["totals"]["deleted"] == run.totals.deleted > 0
    assert detail["write_units"] == run.totals.write_units
    assert detail["cost_estimate_usd"]["total"] > 0
    assert detail["duration_seconds"] >= 0
    assert detail["segments"] == detail["segments_done"] == 3
    assert detail["first_error"] is None
    assert detail["ledger_table"] == LEDGER


def test_each_run_is_reported_once(stack, observer) -> None:
    first = start_run()
    drain(stack, context_factory=roomy_context)
    second = start_run()
    drain(stack, context_factory=roomy_context)

    assert sorted(e["detail"]["run_id"] for e in observed(stack, observer)) == sorted(
        [first, second]
    )


def test_duplicate_deliveries_report_once(stack, observer) -> None:
    start_run()
    bodies = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    )["Messages"]
    send_again(stack, bodies, "again")  # every segment message delivered twice
    drain(stack, context_factory=roomy_context)
    send_again(stack, bodies, "late")  # and once more, long after the run is done
    drain(stack, context_factory=roomy_context)

    assert len(observed(stack, observer)) == 1


def test_a_crash_between_closing_and_publishing_is_reported_by_the_redelivery(
    stack, observer
) -> None:
    run_id = start_run()
    crashes = crash_once_on("PutEvents")
    drain(stack, context_factory=roomy_context, handler=crashing_handler)

    assert crashes["crashes"] == 1
    (event,) = observed(stack, observer)
    assert event["detail"]["run_id"] == run_id
    item = stack.dynamodb.get_item(
        TableName=LEDGER, Key={"run_id": {"S": run_id}, "part": {"S": "RUN"}}
    )["Item"]
    assert "notified_at" in item


def test_a_crash_between_publishing_and_recording_it_reports_twice(stack, observer) -> None:
    """The documented limit of "at least once": the redelivery cannot know the event went."""
    run_id = start_run()
    crashes = crash_once_on(
        "UpdateItem", lambda params: "notified_at" in params.get("UpdateExpression", "")
    )
    drain(stack, context_factory=roomy_context, handler=crashing_handler)

    assert crashes["crashes"] == 1
    assert [e["detail"]["run_id"] for e in observed(stack, observer)] == [run_id, run_id]


def test_no_bus_configured_no_report(stack, observer, monkeypatch) -> None:
    monkeypatch.delenv("SCAVENGER_EVENT_BUS")
    lambda_runtime.cache_clear()
    start_run()
    drain(stack, context_factory=roomy_context)

    assert lambda_runtime().events is None
    assert observed(stack, observer) == []


def test_status_with_stack_names_the_dashboard(stack, observer, capsys, monkeypatch) -> None:
    from scavenger.tools.cli import main

    outputs = {
        "QueueUrl": stack.queue_url,
        "DlqUrl": stack.dlq_url,
        "LedgerTableName": LEDGER,
        "DashboardName": "Prod-scavenger",
    }
    aws.client("cloudformation").create_stack(
        StackName="Prod",
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "Spare": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "spare"}}
                },
                "Outputs": {key: {"Value": value} for key, value in outputs.items()},
            }
        ),
    )
    run_id = start_run()
    drain(stack, context_factory=roomy_context)
    for name in ("SCAVENGER_QUEUE_URL", "SCAVENGER_DLQ_URL", "SCAVENGER_LEDGER_TABLE"):
        monkeypatch.delenv(name)

    for argv in (["status", "--stack", "Prod"], ["status", run_id, "--stack", "Prod"]):
        capsys.readouterr()
        assert main(argv) == 0
        captured = capsys.readouterr()
        assert "dashboard: Prod-scavenger" in captured.out + captured.err
    monkeypatch.setenv("SCAVENGER_LEDGER_TABLE", LEDGER)  # without --stack: no footer
    capsys.readouterr()
    assert main(["status", run_id]) == 0
    captured = capsys.readouterr()
    assert "dashboard:" not in captured.out + captured.err


def test_a_run_reopened_by_requeue_is_reported_again_when_it_closes_again(
    stack, observer, capsys
) -> None:
    from scavenger.tools.cli import main

    run_id = start_run()
    drain(stack, context_factory=roomy_context)
    assert main(["requeue", run_id, "--segment", "1", "--from-start"]) == 0
    assert Ledger(stack.dynamodb, LEDGER).get_run(run_id).status == "running"
    drain(stack, context_factory=roomy_context)
    drain(stack, context_factory=roomy_context)  # nothing left: nothing reported again

    first, second = observed(stack, observer)
    assert first["detail"]["run_id"] == second["detail"]["run_id"] == run_id
    assert first["detail"]["closed_at"] != second["detail"]["closed_at"]


def test_a_halted_run_is_reported_once_with_the_error_that_halted_it(stack, observer) -> None:
    run_id = start_run()
    crashes = crash_once_on("PutEvents")  # and the halting worker dies before publishing
    stack.dynamodb.delete_table(TableName=TABLE)
    drain(stack, context_factory=roomy_context, handler=crashing_handler)

    assert crashes["crashes"] == 1
    (event,) = observed(stack, observer)
    assert event["detail-type"] == DETAIL_TYPES["halted"] == "Scavenger Run Halted"
    detail = event["detail"]
    assert (detail["run_id"], detail["status"]) == (run_id, "halted")
    assert detail["first_error"]["code"] == "ResourceNotFoundException"
    assert detail["first_error"]["resource"] == TABLE
    assert detail["closed_at"] and detail["segments_done"] == 0
