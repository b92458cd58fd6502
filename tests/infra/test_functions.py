"""Planner and worker: one asset, the DESIGN environment, event source, schedule, recursion."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from scavenger.config import load_config, load_sweeps_json
from tests.infra.conftest import SWEEPS_CONFIG
from tests.infra.helpers import (
    PLANNER_HANDLER,
    WORKER_HANDLER,
    dead_letter_queue,
    function,
    ledger_table,
    main_queue,
    only,
    planner_failure_queue,
)

pytestmark = pytest.mark.infra

HANDLERS = [PLANNER_HANDLER, WORKER_HANDLER]


def test_two_functions_share_one_code_asset(template: Template) -> None:
    template.resource_count_is("AWS::Lambda::Function", 2)
    _, planner = function(template, PLANNER_HANDLER)
    _, worker = function(template, WORKER_HANDLER)
    assert planner["Code"] == worker["Code"]


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_run_on_the_latest_python_runtime_on_x86(
    handler: str, template: Template
) -> None:
    _, props = function(template, handler)
    assert props["Runtime"] == "python3.14"
    assert props["Architectures"] == ["x86_64"]


@pytest.mark.parametrize("handler", HANDLERS)
def test_environment_names_the_queue_dlq_ledger_and_powertools(
    handler: str, template: Template
) -> None:
    _, props = function(template, handler)
    env = props["Environment"]["Variables"]
    assert env["SCAVENGER_QUEUE_URL"] == {"Ref": main_queue(template)[0]}
    assert env["SCAVENGER_DLQ_URL"] == {"Ref": dead_letter_queue(template)[0]}
    assert env["SCAVENGER_LEDGER_TABLE"] == {"Ref": ledger_table(template)[0]}
    assert env["POWERTOOLS_SERVICE_NAME"] == "scavenger"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Scavenger"


@pytest.mark.parametrize("handler", HANDLERS)
def test_sweeps_env_holds_the_configured_sweeps(handler: str, template: Template) -> None:
    _, props = function(template, handler)
    sweeps = load_sweeps_json(props["Environment"]["Variables"]["SCAVENGER_SWEEPS"])
    assert sweeps == load_config(SWEEPS_CONFIG).sweeps


def test_worker_has_its_hop_budget(template: Template, custom_template: Template) -> None:
    _, default_worker = function(template, WORKER_HANDLER)
    _, custom_worker = function(custom_template, WORKER_HANDLER)
    assert default_worker["Environment"]["Variables"]["SCAVENGER_MAX_HOPS"] == "1000"
    # a tenth of the 300 s timeout is kept to checkpoint and continue
    assert default_worker["Environment"]["Variables"]["SCAVENGER_SAFETY_MARGIN_SECONDS"] == "30"
    assert custom_worker["Environment"]["Variables"]["SCAVENGER_MAX_HOPS"] == "5000"


def test_worker_allows_recursive_loops_and_the_planner_does_not(template: Template) -> None:
    _, worker = function(template, WORKER_HANDLER)
    _, planner = function(template, PLANNER_HANDLER)
    assert worker["RecursiveLoop"] == "Allow"
    assert planner["RecursiveLoop"] == "Terminate"


def test_memory_and_timeout_come_from_context(custom_template: Template) -> None:
    _, worker = function(custom_template, WORKER_HANDLER)
    assert (worker["MemorySize"], worker["Timeout"]) == (1769, 900)


def test_worker_consumes_the_queue_with_partial_batch_failures(template: Template) -> None:
    worker_id, _ = function(template, WORKER_HANDLER)
    queue_id, _ = main_queue(template)
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 1)
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": worker_id},
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": 1,
            "ScalingConfig": {"MaximumConcurrency": 50},
        },
    )


def test_event_source_limits_come_from_context(custom_template: Template) -> None:
    custom_template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 3, "ScalingConfig": {"MaximumConcurrency": 200}},
    )


def test_planner_runs_on_the_schedule(template: Template) -> None:
    planner_id, _ = function(template, PLANNER_HANDLER)
    template.resource_count_is("AWS::Events::Rule", 1)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(0 2 * * ? *)",
            "State": "ENABLED",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [planner_id, "Arn"]}})],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [planner_id, "Arn"]},
        },
    )


def test_schedule_expression_and_switch_come_from_context(custom_template: Template) -> None:
    custom_template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(6 hours)", "State": "DISABLED"}
    )


@pytest.mark.parametrize("handler", HANDLERS)
def test_each_function_logs_to_its_own_group_with_retention(
    handler: str, template: Template
) -> None:
    _, props = function(template, handler)
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = template.to_json()["Resources"][log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == 30


def test_the_planners_failed_asynchronous_invocations_are_kept_after_two_retries(
    template: Template,
) -> None:
    planner_id, _ = function(template, PLANNER_HANDLER)
    _, config = only(template, "AWS::Lambda::EventInvokeConfig")
    assert config["Properties"]["FunctionName"] == {"Ref": planner_id}
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": [planner_failure_queue(template)[0], "Arn"]}
    assert "OnSuccess" not in config["Properties"]["DestinationConfig"]
