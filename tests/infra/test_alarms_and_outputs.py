"""Alarms on the DLQ, the queue's oldest message and the worker; the outputs the CLI reads."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.infra.conftest import ALARM_TOPIC_ARN
from tests.infra.helpers import (
    PLANNER_HANDLER,
    WORKER_HANDLER,
    dead_letter_queue,
    function,
    ledger_table,
    main_queue,
    planner_failure_queue,
)

pytestmark = pytest.mark.infra


def queue_dimension(queue_id: str) -> list[dict[str, Any]]:
    return [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]


def function_dimension(function_id: str) -> list[dict[str, Any]]:
    return [{"Name": "FunctionName", "Value": {"Ref": function_id}}]


def test_dlq_alarm_fires_on_the_first_message(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": queue_dimension(dead_letter_queue(template)[0]),
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
        },
    )


@pytest.mark.parametrize("which, threshold", [("default", 3600), ("custom", 7200)])
def test_queue_alarm_watches_the_oldest_message_age(
    which: str, threshold: int, template: Template, custom_template: Template
) -> None:
    chosen = template if which == "default" else custom_template
    chosen.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Dimensions": queue_dimension(main_queue(chosen)[0]),
            "Threshold": threshold,
        },
    )


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_worker_alarms_on_errors_and_throttles(metric: str, template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": metric,
            "Dimensions": function_dimension(function(template, WORKER_HANDLER)[0]),
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
        },
    )


def test_planner_alarms_on_errors(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Errors",
            "Dimensions": function_dimension(function(template, PLANNER_HANDLER)[0]),
        },
    )


def test_alarms_notify_nobody_without_a_topic(template: Template) -> None:
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        assert "AlarmActions" not in alarm["Properties"]


def test_every_alarm_notifies_the_topic_from_context(custom_template: Template) -> None:
    alarms = custom_template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 6
    notifying = custom_template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmActions": [ALARM_TOPIC_ARN]}}
    )
    assert len(notifying) == len(alarms)


def test_outputs_are_what_the_cli_stack_discovery_reads(template: Template) -> None:
    template.has_output("QueueUrl", {"Value": {"Ref": main_queue(template)[0]}})
    template.has_output("DlqUrl", {"Value": {"Ref": dead_letter_queue(template)[0]}})
    template.has_output("LedgerTableName", {"Value": {"Ref": ledger_table(template)[0]}})
    template.has_output(
        "PlannerFailureQueueUrl", {"Value": {"Ref": planner_failure_queue(template)[0]}}
    )


def test_a_kept_planner_failure_raises_an_alarm(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [
                {
                    "Name": "QueueName",
                    "Value": {"Fn::GetAtt": [planner_failure_queue(template)[0], "QueueName"]},
                }
            ],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
        },
    )


def test_outputs_are_not_exported(template: Template) -> None:
    for output in template.find_outputs("*").values():
        assert "Export" not in output
