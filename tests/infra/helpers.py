"""Find resources by what they are, never by logical id, and follow references between them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

PLANNER_HANDLER = "planner.handler.handler"
WORKER_HANDLER = "worker.handler.handler"


def only(template: Template, resource_type: str, props: dict[str, Any] | None = None) -> Any:
    """The one resource of ``resource_type`` matching ``props``: (logical id, resource)."""
    found = template.find_resources(resource_type, {"Properties": props or {}})
    assert len(found) == 1, f"expected one {resource_type} matching {props}, found {len(found)}"
    return next(iter(found.items()))


def function(template: Template, handler: str) -> tuple[str, dict[str, Any]]:
    logical_id, resource = only(template, "AWS::Lambda::Function", {"Handler": handler})
    return logical_id, resource["Properties"]


def main_queue(template: Template) -> tuple[str, dict[str, Any]]:
    """The segment queue: the queue that has a redrive policy."""
    queues = template.find_resources("AWS::SQS::Queue")
    with_redrive = [(lid, r) for lid, r in queues.items() if "RedrivePolicy" in r["Properties"]]
    assert len(with_redrive) == 1
    logical_id, resource = with_redrive[0]
    return logical_id, resource["Properties"]


def dead_letter_queue(template: Template) -> tuple[str, dict[str, Any]]:
    """The queue the segment queue's redrive policy points at."""
    _, queue = main_queue(template)
    logical_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    return logical_id, template.to_json()["Resources"][logical_id]["Properties"]


def planner_failure_queue(template: Template) -> tuple[str, dict[str, Any]]:
    """The queue the planner's on-failure destination names."""
    _, config = only(template, "AWS::Lambda::EventInvokeConfig")
    logical_id = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    logical_id = logical_id["Fn::GetAtt"][0]
    return logical_id, template.to_json()["Resources"][logical_id]["Properties"]


def ledger_table(template: Template) -> tuple[str, dict[str, Any]]:
    logical_id, resource = only(template, "AWS::DynamoDB::Table")
    return logical_id, resource["Properties"]


def role_statements(template: Template, handler: str) -> list[dict[str, Any]]:
    """Every IAM statement attached to the role of the function with ``handler``."""
    _, props = function(template, handler)
    role_id = props["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_on(statements: list[dict[str, Any]], resource: Any) -> set[str]:
    """Actions allowed on exactly ``resource`` (a template value such as a GetAtt)."""
    return {
        action
        for statement in statements
        if statement["Effect"] == "Allow" and resource in as_list(statement["Resource"])
        for action in as_list(statement["Action"])
    }


def table_arn(table_name: str) -> dict[str, Any]:
    """The ARN an imported table's grant renders, in the stack's own partition/region/account."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":dynamodb:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":table/{table_name}",
            ],
        ]
    }


def cfn_lint(template_path: Path, repo_root: Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint (this interpreter's) on a synthesized template, with the repository's
    config; any warning fails it."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--config-file",
            str(repo_root / ".cfnlintrc"),
            "--non-zero-exit-code",
            "warning",
            str(template_path),
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
