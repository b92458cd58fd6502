"""The roles grant exactly what the functions call: every AWS call the planner and the worker
make in a representative run on moto needs a grant in the synthesized template, on that
resource, for that function's role; and every grant is used by a recorded call or is listed
below with the reason it is there.

The run exercises every path of the handlers that calls AWS: planning (auto and explicit
segments, a `where` checked by DynamoDB, a dry run), a sweep still running, a planner that
cannot send, a claim, scans and deletes, a delete whose condition failed (the item is read
again and deleted at its new value), continuations, checkpoints, a finished run, a failure
recorded on a segment, and a run halted by AccessDenied on its table. A
static check keeps the run honest: every client operation the handlers' modules can call is
either recorded or listed as the operator CLI's alone.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name

from infra.bundling import handler_modules
from planner.handler import handler as planner_handler
from scavenger import aws
from scavenger import plan as plan_module
from scavenger.config import load_config, parse_sweeps, sweeps_to_json
from scavenger.ledger import Ledger
from scavenger.message import SegmentMessage
from scavenger.queue import SendFailed
from scavenger.runtime import lambda_runtime
from scavenger.tools.provision import create_ledger_table, create_queues
from tests.conftest import REGION, FakeClock, FakeContext, Stack, drain, roomy_context, sqs_event
from tests.dataset import create_table, key_id, now, seed_table
from tests.faults import ErrorInjector, on_call, tick_per_call
from tests.infra.calls import (
    PLANNER,
    WORKER,
    CallRecorder,
    Grant,
    Names,
    compare,
    dynamodb_actions,
    granted,
    required_grants,
)
from tests.infra.conftest import REPO_ROOT, SWEEPS_CONFIG, Synthesized
from tests.infra.helpers import PLANNER_HANDLER, WORKER_HANDLER
from tests.sweeps import sweep_spec
from worker.handler import handler as worker_handler

pytestmark = pytest.mark.infra

HANDLERS = {PLANNER_HANDLER: PLANNER, WORKER_HANDLER: WORKER}
LEDGER = "recorded-ledger"
# The swept tables of tests/infra/scavenger.toml, which the template is synthesized from.
SWEEPS = [
    sweep_spec("stale-workers", "Workers", completed=True, segments="auto"),
    sweep_spec("old-sessions", "Sessions", segments=2, dry_run=True),
]

LAMBDA_SERVICE = "used by the Lambda service with the function's role, not by our code"
# Granted, but no call of ours makes them: each with the reason it is there.
UNRECORDED: dict[str, dict[Grant, str]] = {
    PLANNER: {
        ("logs:CreateLogStream", ("logs", PLANNER)): f"the runtime's log stream: {LAMBDA_SERVICE}",
        ("logs:PutLogEvents", ("logs", PLANNER)): f"the runtime's log lines: {LAMBDA_SERVICE}",
        ("sqs:SendMessage", ("planner-failures",)): (
            f"the on-failure destination of asynchronous invocations: {LAMBDA_SERVICE}"
        ),
    },
    WORKER: {
        ("logs:CreateLogStream", ("logs", WORKER)): f"the runtime's log stream: {LAMBDA_SERVICE}",
        ("logs:PutLogEvents", ("logs", WORKER)): f"the runtime's log lines: {LAMBDA_SERVICE}",
        ("sqs:ReceiveMessage", ("queue",)): f"the SQS event source mapping polls: {LAMBDA_SERVICE}",
        ("sqs:DeleteMessage", ("queue",)): f"the event source mapping deletes: {LAMBDA_SERVICE}",
        ("sqs:GetQueueAttributes", ("queue",)): f"the event source mapping: {LAMBDA_SERVICE}",
        ("sqs:ChangeMessageVisibility", ("queue",)): (
            f"the event source mapping's visibility for failed records: {LAMBDA_SERVICE}"
        ),
        ("sqs:GetQueueUrl", ("queue",)): (
            "granted by CDK's SqsEventSource together with the consume actions "
            "(grantConsumeMessages); harmless on the function's own queue"
        ),
        ("dynamodb:PartiQLDelete", ("table", "Workers")): (
            "the batch path's BatchExecuteStatement (Workers' sweep is in batch mode). moto "
            "cannot run it (its PartiQL DELETE ignores the predicates), so this run sweeps "
            "in item mode; tests/integration/test_batch_deletes.py records the batch path's "
            "calls on DynamoDB Local against these grants"
        ),
    },
}
# Client operations the handlers' modules contain that no function calls: the operator CLI
# uses these methods of the shared adapters.
CLI_ONLY: dict[str, str] = {}
# Calls of the functions this moto run cannot make, checked against the grants elsewhere.
RECORDED_ELSEWHERE = {
    "BatchExecuteStatement": "the batch path: moto's PartiQL is not DynamoDB's; "
    "tests/integration/test_batch_deletes.py records it on DynamoDB Local",
}
# What the representative run must have done, so that a quiet path cannot pass unnoticed.
MUST_RECORD: set[tuple[str, str, tuple[str, ...]]] = {
    (PLANNER, "dynamodb:DescribeTable", ("table", "Workers")),
    (PLANNER, "dynamodb:Scan", ("table", "Workers")),
    (WORKER, "dynamodb:BatchGetItem", ("ledger",)),
    (WORKER, "dynamodb:BatchWriteItem", ("ledger",)),
    (WORKER, "dynamodb:UpdateItem", ("ledger",)),
    (PLANNER, "dynamodb:PutItem", ("ledger",)),
    (PLANNER, "dynamodb:BatchWriteItem", ("ledger",)),
    (PLANNER, "dynamodb:UpdateItem", ("ledger",)),
    (PLANNER, "sqs:SendMessage", ("queue",)),
    (WORKER, "dynamodb:Scan", ("table", "Workers")),
    (WORKER, "dynamodb:DeleteItem", ("table", "Workers")),
    (WORKER, "dynamodb:GetItem", ("table", "Workers")),
    (WORKER, "dynamodb:Query", ("ledger",)),
    (WORKER, "sqs:SendMessage", ("queue",)),
    (WORKER, "events:PutEvents", ("event-bus", "default")),
}


@dataclass(frozen=True)
class Recorded:
    required: dict[str, set[Grant]]
    operations: set[str]
    rewritten: int
    run_status: str
    continuations: int
    halted_status: str


def ledger_run_status(dynamodb: Any, run_id: str) -> str:
    run = Ledger(dynamodb, LEDGER).get_run(run_id)
    return run.status if run else "missing"


def representative_run(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    """Plan and sweep on moto with the calls recorded; see the module docstring."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_METRICS_NAMESPACE": "ScavengerTests",
        "SCAVENGER_PAGE_SIZE": "7",
        "SCAVENGER_LEDGER_TABLE": LEDGER,
        # Item mode: moto's PartiQL is not DynamoDB's (see UNRECORDED).
        "SCAVENGER_SWEEPS": sweeps_to_json(
            parse_sweeps([{**sweep, "delete_mode": "item"} for sweep in SWEEPS])
        ),
        "SCAVENGER_EVENT_BUS": "default",  # as the stack sets it
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    aws.reset_clients()
    lambda_runtime.cache_clear()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        create_ledger_table(dynamodb, LEDGER)
        queues = create_queues(sqs, "recorded", visibility_timeout=30)
        monkeypatch.setenv("SCAVENGER_QUEUE_URL", queues.queue_url)
        monkeypatch.setenv("SCAVENGER_DLQ_URL", queues.dlq_url)
        queue_arn = sqs.get_queue_attributes(
            QueueUrl=queues.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        cutoff = now() - timedelta(hours=48)
        for table in ("Workers", "Sessions"):
            create_table(dynamodb, table, "composite_number_string")
        truth = seed_table(dynamodb, "Workers", "composite_number_string", count=80, cutoff=cutoff)
        seed_table(dynamodb, "Sessions", "composite_number_string", count=20, cutoff=cutoff)

        recorder = CallRecorder()
        for service in ("dynamodb", "sqs", "events"):
            recorder.install(aws.client(service))

        scheduled = {"source": "aws.events", "detail-type": "Scheduled Event"}
        runs = {run["sweep"]: run for run in planner_handler(scheduled, roomy_context())["runs"]}
        assert all(run["started"] for run in runs.values()), runs
        again = planner_handler(scheduled, roomy_context())["runs"]
        assert not any(run["started"] for run in again), again
        lambda_runtime().sleep = lambda seconds: None

        # A writer gives one expired item another expired age between scan and delete.
        victim = min(truth.doomed)
        rewritten: list[str] = []

        def rewrite(params: dict[str, Any]) -> None:
            if key_id(params["Key"]) == victim and not rewritten:
                older = (now() - timedelta(days=40)).isoformat()
                rewritten.append(older)
                dynamodb.update_item(
                    TableName="Workers",
                    Key=truth.keys[victim],
                    UpdateExpression="SET ts = :older",
                    ExpressionAttributeValues={":older": {"S": older}},
                )

        on_call(aws.client("dynamodb"), "DeleteItem", rewrite)
        clock = FakeClock()
        tick_per_call(aws.client("dynamodb"), lambda: clock.advance(0.2))

        stack = Stack(dynamodb, sqs, queues.queue_url, queues.dlq_url, queue_arn, LEDGER)
        drained = drain(stack, context_factory=lambda: FakeContext(clock, timeout_seconds=8))

        # A run past the shard threshold: the planner sends plan shards, workers plan them.
        unsharded = plan_module.SHARD_THRESHOLD, plan_module.SHARD_SEGMENTS
        monkeypatch.setattr(plan_module, "SHARD_THRESHOLD", 1)
        monkeypatch.setattr(plan_module, "SHARD_SEGMENTS", 1)
        (sharded,) = planner_handler({"sweep": "old-sessions"}, roomy_context())["runs"]
        assert sharded["shards"] == 2, sharded
        drain(stack, context_factory=lambda: FakeContext(clock, timeout_seconds=8))
        assert ledger_run_status(dynamodb, sharded["run_id"]) == "done"
        monkeypatch.setattr(plan_module, "SHARD_THRESHOLD", unsharded[0])
        monkeypatch.setattr(plan_module, "SHARD_SEGMENTS", unsharded[1])

        # A segment message the worker cannot sweep: the failure is noted on its segment.
        stray = SegmentMessage(
            run_id=runs["stale-workers"]["run_id"],
            sweep="not-configured",
            table="Workers",
            segment=0,
            total_segments=1,
            cutoff=cutoff,
            dry_run=False,
        )
        record = {
            "MessageId": "stray",
            "ReceiptHandle": "stray",
            "Body": stray.to_json(),
            "Attributes": {"MessageGroupId": stray.group_id},
        }
        answer = worker_handler(sqs_event([record], queue_arn), FakeContext(clock, 8))
        assert answer["batchItemFailures"] == [{"itemIdentifier": "stray"}]

        # A second run of the sweep meets AccessDenied on its table: the run halts.
        (halting,) = planner_handler({"sweep": "stale-workers"}, roomy_context())["runs"]
        assert halting["started"], halting
        ErrorInjector(aws.client("dynamodb"), "Scan", rate=1.0, code="AccessDeniedException")
        drain(stack, context_factory=lambda: FakeContext(clock, timeout_seconds=8))
        halted = ledger_run_status(dynamodb, halting["run_id"])

        # A planner that cannot send marks the unsent segments failed in the ledger.
        ErrorInjector(aws.client("sqs"), "SendMessageBatch", rate=1.0, code="AccessDenied")
        with pytest.raises(SendFailed):
            planner_handler({"sweep": "old-sessions"}, roomy_context())

        status = ledger_run_status(dynamodb, runs["stale-workers"]["run_id"])
        names = Names(
            ledger_table=LEDGER,
            queues={queues.queue_url: ("queue",), queues.dlq_url: ("dlq",)},
        )
        required = required_grants(recorder.calls, names)
        operations = {call.operation for call in recorder.calls}
    aws.reset_clients()
    lambda_runtime.cache_clear()
    continuations = sum(1 for body in drained.bodies if body.get("hop", 0) > 0)
    return Recorded(required, operations, len(rewritten), status, continuations, halted)


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield representative_run(monkeypatch)


@pytest.fixture(scope="module")
def template_json(synthesized: Synthesized) -> dict[str, Any]:
    return dict(synthesized.template.to_json())


def client_operations_in_handler_modules() -> set[str]:
    """Every DynamoDB, SQS or EventBridge operation a method call in the handlers' modules
    may make."""
    session = botocore.session.get_session()
    by_method = {
        xform_name(operation): operation
        for service in ("dynamodb", "sqs", "events")
        for operation in session.get_service_model(service).operation_names
    }
    found: set[str] = set()
    for path in handler_modules(REPO_ROOT).values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in by_method
                and isinstance(node.func.value, ast.Attribute | ast.Name)
                and ast.unparse(node.func.value).split(".")[-1]
                in ("client", "dynamodb", "sqs", "events")
            ):
                found.add(by_method[node.func.attr])
    return found


def test_the_run_sweeps_the_tables_the_template_grants_as_the_template_does() -> None:
    deployed = load_config(str(SWEEPS_CONFIG)).sweeps
    recorded = parse_sweeps(SWEEPS)

    def shape(sweeps: Any) -> set[tuple[str, bool, bool]]:
        return {(s.table, s.dry_run, s.where is not None) for s in sweeps}

    assert shape(recorded) == shape(deployed)


def test_the_run_took_every_path_it_is_meant_to(recorded: Recorded) -> None:
    assert recorded.rewritten == 1
    assert recorded.run_status == "done"
    assert recorded.continuations > 0
    assert recorded.halted_status == "halted"
    made = {
        (function, action, resource)
        for function, grants in recorded.required.items()
        for action, resource in grants
    }
    assert MUST_RECORD - made == set()


def test_every_client_operation_of_the_handlers_is_recorded_or_the_clis_alone(
    recorded: Recorded,
) -> None:
    static = client_operations_in_handler_modules()
    assert static - recorded.operations == set(CLI_ONLY) | set(RECORDED_ELSEWHERE)
    assert recorded.operations <= static


def test_the_roles_grant_exactly_what_the_functions_call(
    recorded: Recorded, template_json: dict[str, Any]
) -> None:
    problems = compare(recorded.required, granted(template_json, HANDLERS), UNRECORDED)
    assert problems == [], "\n".join(problems)


def every_granted_action(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(policy logical id, action, a readable resource) for each action of each statement."""
    found = []
    for logical_id, resource in sorted(template["Resources"].items()):
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                for action in actions if isinstance(actions, list) else [actions]:
                    found.append((logical_id, action, json.dumps(statement["Resource"])[:80]))
    return found


def without_action(template: dict[str, Any], policy: str, action: str) -> dict[str, Any]:
    mutant = copy.deepcopy(template)
    for statement in mutant["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]:
        actions = statement["Action"]
        if isinstance(actions, list) and action in actions:
            actions.remove(action)
            if not actions:
                statement["Action"] = "iam:NoSuchAction"
        elif actions == action:
            statement["Action"] = "iam:NoSuchAction"
    return mutant


def test_dropping_any_one_granted_action_is_caught(
    recorded: Recorded, template_json: dict[str, Any]
) -> None:
    """Each mutant removes one action from one policy statement; every one must be noticed
    (a call left without its grant, or a listed Lambda-service grant gone missing)."""
    survivors = []
    mutants = every_granted_action(template_json)
    assert len(mutants) >= 15
    for policy, action, resource in mutants:
        mutant = without_action(template_json, policy, action)
        try:
            problems = compare(recorded.required, granted(mutant, HANDLERS), UNRECORDED)
        except AssertionError:
            problems = ["unreadable"]
        if not any(action in problem for problem in problems):
            survivors.append((policy, action, resource))
    assert survivors == []


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        (
            "BatchExecuteStatement",
            {"Statements": [{"Statement": 'DELETE FROM "Workers" WHERE "id" = ? AND "ts" = ?'}]},
            [("dynamodb:PartiQLDelete", "Workers")],
        ),
        (
            "ExecuteStatement",
            {"Statement": 'SELECT "ts" FROM "Sessions"."by-ts" WHERE "id" = ?'},
            [("dynamodb:PartiQLSelect", "Sessions")],
        ),
        (
            "ExecuteStatement",
            {"Statement": "UPDATE Workers SET ts = ? WHERE id = ?"},
            [("dynamodb:PartiQLUpdate", "Workers")],
        ),
        (
            "ExecuteStatement",
            {"Statement": "INSERT INTO \"Workers\" VALUE {'id': ?}"},
            [("dynamodb:PartiQLInsert", "Workers")],
        ),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "L"}},
                    {"ConditionCheck": {"TableName": "L"}},
                ]
            },
            [("dynamodb:PutItem", "L"), ("dynamodb:ConditionCheckItem", "L")],
        ),
        (
            "BatchWriteItem",
            {"RequestItems": {"A": [], "B": []}},
            [("dynamodb:BatchWriteItem", "A"), ("dynamodb:BatchWriteItem", "B")],
        ),
        ("GetItem", {"TableName": "Workers"}, [("dynamodb:GetItem", "Workers")]),
    ],
)
def test_each_dynamodb_call_maps_to_the_iam_actions_it_needs(
    operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert list(dynamodb_actions(operation, params)) == expected


def test_the_session_audit_flags_a_call_the_roles_do_not_allow(
    template_json: dict[str, Any],
) -> None:
    from tests.infra.audit import audit, recorded

    lines = [
        json.dumps({"function": WORKER, "operation": "GetItem", "grants": [[a, k]]})
        for a, k in [
            ("dynamodb:GetItem", "swept-table"),
            ("dynamodb:BatchGetItem", "ledger"),
            ("dynamodb:PutItem", "swept-table"),
        ]
    ]

    assert audit(recorded(lines), template_json) == [
        "worker: dynamodb:PutItem on a swept-table is not granted"
    ]
