"""``scavenger plan --from-failed`` on in-process moto: the records Lambda keeps on the
planner's on-failure destination are replayed through the planner, and each is deleted only
after its replay succeeded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scavenger import aws
from scavenger.ledger import Ledger
from scavenger.tools.cli import main
from tests.conftest import LEDGER
from tests.faults import ErrorInjector
from tests.runs import seed_sweep
from tests.sweeps import sweep_spec

pytestmark = pytest.mark.integration

SWEEP = sweep_spec(segments=3)
SCHEDULED = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-12-01T02:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/Scavenger-Schedule"],
    "detail": {},
}


def destination_record(event: Any, error: str = "AccessDeniedException: not authorized") -> str:
    """A failed asynchronous invocation as Lambda sends it to an SQS on-failure destination."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-12-01T02:03:11.420Z",
            "requestContext": {
                "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:Planner:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": error, "errorType": "FatalError"},
        }
    )


@pytest.fixture
def failures(stack, monkeypatch, tmp_path):
    """The planner failure queue (standard), a seeded table and its sweep."""
    monkeypatch.chdir(tmp_path)
    url = stack.sqs.create_queue(QueueName="planner-failures")["QueueUrl"]
    monkeypatch.setenv("SCAVENGER_PLANNER_FAILURES_URL", url)
    seed_sweep(stack, monkeypatch, SWEEP, count=30, with_where=False)
    return url


def keep(stack, url: str, body: str) -> None:
    stack.sqs.send_message(QueueUrl=url, MessageBody=body)


def kept_bodies(stack, url: str) -> list[str]:
    messages = stack.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return sorted(message["Body"] for message in messages)


def plan_from_failed(capsys, *extra: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = main(["plan", "--from-failed", "--json", *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def test_a_kept_scheduled_run_is_replayed_then_deleted(stack, failures, capsys):
    keep(stack, failures, destination_record(SCHEDULED))

    code, report, _ = plan_from_failed(capsys)

    assert code == 0
    (replayed,) = report["replayed"]
    assert replayed["event"] == SCHEDULED
    assert replayed["original_error"] == "AccessDeniedException: not authorized"
    assert replayed["deleted"] is True
    (run,) = replayed["runs"]
    assert run["started"] is True and run["segments"] == 3
    assert Ledger(stack.dynamodb, LEDGER).get_run(run["run_id"]).total_segments == 3
    segments = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)
    assert len(segments["Messages"]) == 3
    assert kept_bodies(stack, failures) == []


def test_a_record_whose_replay_fails_is_kept_and_the_others_go_on(stack, failures, capsys):
    unknown = destination_record({"sweep": "gone"})
    unreadable = "this is not a destination record"
    for body in (unknown, unreadable, destination_record({"sweep": "sweep", "dry_run": True})):
        keep(stack, failures, body)

    code, report, _ = plan_from_failed(capsys)

    assert code == 1
    by_event = {json.dumps(r["event"], sort_keys=True): r for r in report["replayed"]}
    assert by_event['{"dry_run": true, "sweep": "sweep"}']["deleted"] is True
    assert by_event['{"dry_run": true, "sweep": "sweep"}']["runs"][0]["dry_run"] is True
    assert "'gone' is not configured" in by_event['{"sweep": "gone"}']["replay_error"]
    assert by_event["null"]["replay_error"].startswith("not JSON")
    assert kept_bodies(stack, failures) == sorted([unknown, unreadable])


def test_a_replay_that_cannot_send_keeps_its_record(stack, failures, capsys):
    record = destination_record(SCHEDULED)
    keep(stack, failures, record)
    ErrorInjector(aws.client("sqs"), "SendMessageBatch", rate=1.0, code="AccessDenied")

    code, report, _ = plan_from_failed(capsys)

    assert code == 1
    (replayed,) = report["replayed"]
    assert replayed["deleted"] is False
    assert "could not send" in replayed["replay_error"]
    assert kept_bodies(stack, failures) == [record]


def test_nothing_kept_is_said_and_succeeds(stack, failures, capsys):
    code, report, err = plan_from_failed(capsys)

    assert (code, report) == (0, {"replayed": []})
    assert "nothing to replay" in err


def test_from_failed_refuses_sweep_and_dry_run(stack, failures, capsys):
    for extra in (["--sweep", "sweep"], ["--dry-run"]):
        code, report, err = plan_from_failed(capsys, *extra)
        assert (code, report) == (2, None)
        assert err.strip().splitlines() == [
            "scavenger plan: error: --from-failed replays each kept event as it was sent: "
            "drop --sweep and --dry-run"
        ]


def test_without_the_failure_queue_the_error_says_where_to_name_it(
    stack, failures, capsys, monkeypatch
):
    monkeypatch.delenv("SCAVENGER_PLANNER_FAILURES_URL")

    code, _, err = plan_from_failed(capsys)

    assert code == 2
    (line,) = err.strip().splitlines()
    assert "planner failure queue: not found" in line
    assert "SCAVENGER_PLANNER_FAILURES_URL" in line and "--stack NAME" in line


def test_the_failure_queue_is_found_in_the_stack_outputs() -> None:
    from scavenger.tools.resources import discover
    from tests.unit.test_ops_resources import stack_client

    url = "https://sqs.us-east-1.amazonaws.com/123456789012/Scavenger-PlannerFailures"
    cloudformation = stack_client({"PlannerFailureQueueUrl": url})

    resources = discover(
        config_resources={}, env={}, stack="prod", cloudformation=lambda: cloudformation, sqs=None
    )

    assert resources.planner_failures_url == url
    assert resources.source("planner_failures_url") == "stack prod output PlannerFailureQueueUrl"
