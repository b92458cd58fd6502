"""Least privilege: each function may do what it calls, on the named resources, and no more."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.infra.helpers import (
    PLANNER_HANDLER,
    WORKER_HANDLER,
    actions_on,
    as_list,
    ledger_table,
    main_queue,
    planner_failure_queue,
    role_statements,
    table_arn,
)

pytestmark = pytest.mark.infra

SWEPT_TABLES = ("Workers", "Sessions")
LEDGER_ACTIONS = {
    PLANNER_HANDLER: {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",  # a running run's pending shards
    },
    WORKER_HANDLER: {
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",  # a plan shard's segment items
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
    },
}
HANDLERS = [PLANNER_HANDLER, WORKER_HANDLER]


def all_statements(template: Template) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_no_statement_allows_a_wildcard_action(template: Template) -> None:
    for statement in all_statements(template):
        for action in as_list(statement["Action"]):
            assert "*" not in action, statement


def test_no_data_plane_action_applies_to_a_wildcard_resource(template: Template) -> None:
    for statement in all_statements(template):
        if any(a.startswith(("dynamodb:", "sqs:")) for a in as_list(statement["Action"])):
            for resource in as_list(statement["Resource"]):
                assert isinstance(resource, dict), f"literal resource {resource!r} in {statement}"


def test_roles_carry_no_managed_policies(template: Template) -> None:
    roles = template.find_resources("AWS::IAM::Role")
    assert len(roles) == 2
    for role in roles.values():
        assert "ManagedPolicyArns" not in role["Properties"]
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "lambda.amazonaws.com"
        }


def test_worker_may_scan_delete_and_reread_on_a_table_it_deletes_from(template: Template) -> None:
    # A delete whose condition failed is followed by a consistent GetItem of the item.
    statements = role_statements(template, WORKER_HANDLER)
    assert actions_on(statements, table_arn("Workers")) == {
        "dynamodb:Scan",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PartiQLDelete",
        "dynamodb:DescribeTable",
    }


def test_worker_may_only_scan_a_table_that_only_dry_runs_sweep(template: Template) -> None:
    statements = role_statements(template, WORKER_HANDLER)
    assert actions_on(statements, table_arn("Sessions")) == {
        "dynamodb:Scan",
        "dynamodb:DescribeTable",
    }


def test_planner_may_describe_the_swept_tables_and_scan_one_whose_sweep_filters(
    template: Template,
) -> None:
    # Workers' sweep has a `where`, which the planner has DynamoDB check with a one-item Scan.
    statements = role_statements(template, PLANNER_HANDLER)
    assert actions_on(statements, table_arn("Workers")) == {
        "dynamodb:DescribeTable",
        "dynamodb:Scan",
    }
    assert actions_on(statements, table_arn("Sessions")) == {"dynamodb:DescribeTable"}


def test_no_other_table_is_granted(template: Template) -> None:
    ledger_arn = {"Fn::GetAtt": [ledger_table(template)[0], "Arn"]}
    allowed = [table_arn(name) for name in SWEPT_TABLES] + [ledger_arn]
    for statement in all_statements(template):
        if any(a.startswith("dynamodb:") for a in as_list(statement["Action"])):
            for resource in as_list(statement["Resource"]):
                assert resource in allowed, resource


@pytest.mark.parametrize("handler", HANDLERS)
def test_each_function_may_do_on_the_ledger_only_what_it_calls(
    handler: str, template: Template
) -> None:
    ledger_arn = {"Fn::GetAtt": [ledger_table(template)[0], "Arn"]}
    assert actions_on(role_statements(template, handler), ledger_arn) == LEDGER_ACTIONS[handler]


@pytest.mark.parametrize("handler", HANDLERS)
def test_both_functions_send_to_the_queue(handler: str, template: Template) -> None:
    queue_arn = {"Fn::GetAtt": [main_queue(template)[0], "Arn"]}
    assert "sqs:SendMessage" in actions_on(role_statements(template, handler), queue_arn)


def test_only_the_planner_may_send_to_the_planner_failure_queue(template: Template) -> None:
    failures_arn = {"Fn::GetAtt": [planner_failure_queue(template)[0], "Arn"]}
    assert actions_on(role_statements(template, PLANNER_HANDLER), failures_arn) == {
        "sqs:SendMessage"
    }
    assert actions_on(role_statements(template, WORKER_HANDLER), failures_arn) == set()


def test_only_the_worker_consumes_the_queue(template: Template) -> None:
    queue_arn = {"Fn::GetAtt": [main_queue(template)[0], "Arn"]}
    consume = {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    }
    assert consume <= actions_on(role_statements(template, WORKER_HANDLER), queue_arn)
    planner_actions = actions_on(role_statements(template, PLANNER_HANDLER), queue_arn)
    assert not planner_actions & {"sqs:ReceiveMessage", "sqs:DeleteMessage"}


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_write_logs_only_to_their_own_group(handler: str, template: Template) -> None:
    statements = role_statements(template, handler)
    log_statements = [s for s in statements if any(a.startswith("logs:") for a in s["Action"])]
    assert len(log_statements) == 1
    assert set(log_statements[0]["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    log_group_id = log_statements[0]["Resource"]["Fn::GetAtt"][0]
    assert template.to_json()["Resources"][log_group_id]["Type"] == "AWS::Logs::LogGroup"


def test_only_a_table_with_a_batch_mode_sweep_is_granted_partiql_delete() -> None:
    from infra.settings import StackSettings
    from scavenger.config import parse_sweeps

    base = {"age_attribute": "ts", "age_format": "iso8601", "max_age": "1h"}
    sweeps = parse_sweeps(
        [
            {**base, "name": "a", "table": "Batched"},
            {**base, "name": "b", "table": "Itemised", "delete_mode": "item"},
            {**base, "name": "c", "table": "DryRun", "dry_run": True},
        ]
    )

    assert StackSettings(sweeps=sweeps).batch_deleting_tables == {"Batched"}
