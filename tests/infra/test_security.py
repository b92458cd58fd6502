"""Security review of the template: no wildcard on data, only a TLS deny for the world
on the queues, nothing secret in the functions' environment, invocations scoped."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.infra.helpers import as_list, dead_letter_queue, main_queue

pytestmark = pytest.mark.infra

SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)
ACCESS_KEY_VALUE = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")


def rendered(value: Any) -> str:
    """A template value as text: Fn::Join joined, references as placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(rendered(part) for part in parts)
    if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value):
        return "<ref>"
    return repr(value)


def statements(template: Template, resource_type: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template.find_resources(resource_type).values()
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("which", ["default", "custom"])
def test_no_data_grant_reaches_a_wildcard_resource(
    which: str, template: Template, custom_template: Template
) -> None:
    chosen = template if which == "default" else custom_template
    for statement in statements(chosen, "AWS::IAM::Policy"):
        actions = as_list(statement["Action"])
        if statement["Effect"] != "Allow" or not any(
            action.startswith(("dynamodb:", "sqs:")) for action in actions
        ):
            continue
        for resource in as_list(statement["Resource"]):
            assert "*" not in rendered(resource), (actions, rendered(resource))


def test_the_world_is_only_ever_denied_and_only_without_tls(template: Template) -> None:
    queue_statements = statements(template, "AWS::SQS::QueuePolicy")
    assert queue_statements
    for statement in queue_statements:
        principal = statement.get("Principal")
        if principal in ("*", {"AWS": "*"}):
            assert statement["Effect"] == "Deny", statement
            assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_each_queue_has_its_own_tls_only_policy(template: Template) -> None:
    covered: dict[str, int] = {}
    for policy in template.find_resources("AWS::SQS::QueuePolicy").values():
        denies_plain_text = any(
            statement["Effect"] == "Deny"
            and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        )
        for queue in policy["Properties"]["Queues"]:
            covered[queue["Ref"]] = covered.get(queue["Ref"], 0) + int(denies_plain_text)
    assert covered.get(main_queue(template)[0]) and covered.get(dead_letter_queue(template)[0])


def test_function_environments_hold_no_secrets(template: Template) -> None:
    functions = template.find_resources("AWS::Lambda::Function")
    assert functions
    for function in functions.values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            assert not SECRET_NAME.search(name), name
            assert not ACCESS_KEY_VALUE.search(rendered(value)), name


def test_only_the_schedule_may_invoke_the_planner(template: Template) -> None:
    permissions = template.find_resources("AWS::Lambda::Permission")
    for permission in permissions.values():
        properties = permission["Properties"]
        assert properties["Principal"] != "*", properties
        assert "SourceArn" in properties, properties
