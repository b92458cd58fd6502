"""The deployment's dashboard and run reports: widgets on the worker's metrics and the queues,
PutEvents on one bus only, an optional rule to an SNS topic, the outputs the CLI reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.functions import METRICS_NAMESPACE as NAMESPACE
from scavenger.events import DETAIL_TYPES, EVENT_SOURCE
from tests.infra.conftest import REPO_ROOT, Synthesized, synthesize
from tests.infra.helpers import (
    WORKER_HANDLER,
    actions_on,
    cfn_lint,
    dead_letter_queue,
    function,
    ledger_table,
    main_queue,
    only,
    role_statements,
)

pytestmark = pytest.mark.infra

NOTIFY_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:scavenger-runs"
SWEEPS = ("stale-workers", "old-sessions")


@pytest.fixture(scope="module")
def notifying(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        tmp_path_factory.mktemp("cdk-notify"),
        {"notify_topic_arn": NOTIFY_TOPIC_ARN, "event_bus_name": "ops-bus"},
    )


def rendered(value: Any) -> str:
    """A template string value with its references spelled ``${LogicalId}`` or
    ``${LogicalId.Attribute}``, so a test can read what a dashboard body names."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(rendered(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    raise AssertionError(f"unexpected template value {value!r}")


def dashboard(template: Template) -> tuple[str, dict[str, Any]]:
    _, resource = only(template, "AWS::CloudWatch::Dashboard")
    props = resource["Properties"]
    return props["DashboardName"], json.loads(rendered(props["DashboardBody"]))


def metrics_of(body: dict[str, Any]) -> list[list[Any]]:
    return [
        metric
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
    ]


def test_one_dashboard_named_after_the_stack(template: Template) -> None:
    name, _ = dashboard(template)
    assert name == "Scavenger-scavenger"
    template.has_output("DashboardName", {"Value": {"Ref": Match.any_value()}})


def test_dashboard_shows_each_sweeps_worker_metrics(template: Template) -> None:
    _, body = dashboard(template)
    # Each metric: [namespace, name, dimension, value, dimension, value, {options}]
    emitted = {
        (metric[1], metric[2], metric[3], metric[4], metric[5])
        for metric in metrics_of(body)
        if metric[0] == NAMESPACE
    }
    for sweep in SWEEPS:
        for name in ("deleted", "skipped", "throttled", "write_units"):
            # the dimensions scavenger.observability.emit_counts writes
            assert {(name, "sweep", sweep, "service", "scavenger")} & emitted or {
                (name, "service", "scavenger", "sweep", sweep)
            } & emitted, (name, sweep)


def test_dashboard_shows_queue_depth_age_and_the_dlq(template: Template) -> None:
    _, body = dashboard(template)
    queue_name = "${" + main_queue(template)[0] + ".QueueName}"
    dlq_name = "${" + dead_letter_queue(template)[0] + ".QueueName}"
    sqs = {(m[1], m[3]) for m in metrics_of(body) if m[0] == "AWS/SQS"}
    assert ("ApproximateNumberOfMessagesVisible", queue_name) in sqs
    assert ("ApproximateNumberOfMessagesNotVisible", queue_name) in sqs
    assert ("ApproximateAgeOfOldestMessage", queue_name) in sqs
    assert ("ApproximateNumberOfMessagesVisible", dlq_name) in sqs


def test_dashboard_shows_the_workers_duration_errors_and_concurrency(template: Template) -> None:
    _, body = dashboard(template)
    worker = "${" + function(template, WORKER_HANDLER)[0] + "}"
    lambda_metrics = {(m[1], m[3]) for m in metrics_of(body) if m[0] == "AWS/Lambda"}
    for name in ("Duration", "Errors", "Throttles", "ConcurrentExecutions"):
        assert (name, worker) in lambda_metrics


def test_worker_may_put_events_on_the_default_bus_only(template: Template) -> None:
    _, worker = function(template, WORKER_HANDLER)
    assert worker["Environment"]["Variables"]["SCAVENGER_EVENT_BUS"] == "default"
    statements = role_statements(template, WORKER_HANDLER)
    put = [s for s in statements if "events:PutEvents" in json.dumps(s["Action"])]
    assert len(put) == 1
    assert rendered(put[0]["Resource"]).endswith(":event-bus/default")
    assert "*" not in rendered(put[0]["Resource"])
    planner = role_statements(template, "planner.handler.handler")
    assert not any("events:" in json.dumps(s["Action"]) for s in planner)


def test_no_rule_without_a_topic(template: Template) -> None:
    template.resource_properties_count_is(
        "AWS::Events::Rule", {"EventPattern": {"source": [EVENT_SOURCE]}}, 0
    )
    template.has_output("EventBusName", {"Value": "default"})


def test_topic_from_context_gets_this_deployments_run_events(notifying: Synthesized) -> None:
    template = notifying.template
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventBusName": "ops-bus",
            "EventPattern": {
                "source": [EVENT_SOURCE],
                "detail-type": sorted(DETAIL_TYPES.values()),
                "detail": {"ledger_table": [{"Ref": ledger_table(template)[0]}]},
            },
            "Targets": [Match.object_like({"Arn": NOTIFY_TOPIC_ARN})],
        },
    )
    statements = role_statements(template, WORKER_HANDLER)
    bus_arn = [rendered(s["Resource"]) for s in statements if "events:PutEvents" in s["Action"]]
    assert len(bus_arn) == 1 and bus_arn[0].endswith(":event-bus/ops-bus")
    _, worker = function(template, WORKER_HANDLER)
    assert worker["Environment"]["Variables"]["SCAVENGER_EVENT_BUS"] == "ops-bus"
    assert actions_on(statements, NOTIFY_TOPIC_ARN) == set()


def test_notifying_stack_passes_cdk_nag_and_cfn_lint(notifying: Synthesized) -> None:
    violations = [
        violation["ruleName"]
        for report in notifying.validation_report.get("pluginReports", [])
        for violation in report.get("violations", [])
    ]
    assert violations == []
    result = cfn_lint(notifying.template_path, REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "key, value",
    [("notify_topic_arn", "not-an-arn"), ("event_bus_name", "bad bus name!")],
)
def test_bad_context_is_refused_naming_the_key(key: str, value: str, tmp_path: Path) -> None:
    from scavenger.errors import ConfigError

    with pytest.raises(ConfigError, match=key):
        synthesize(tmp_path, {key: value})
