"""Every AWS call the planner and the worker make, and what IAM must allow for it.

A :class:`CallRecorder` hooks botocore's ``before-parameter-build`` event on the clients the
functions use: each call is named (service, operation, parameters) before it is sent and
attributed to the function whose handler is on the stack (``planner.handler`` or
``worker.handler``); calls the test or the operator CLI make are not the functions' and are
left out. :func:`required_grants` turns calls into (IAM action, resource) pairs; the template
side reads the same pairs from the roles' policies (:func:`granted`), resources named as
:data:`Resource` keys that both sides share.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PLANNER = "planner"
WORKER = "worker"
HANDLER_MODULES = {"planner.handler": PLANNER, "worker.handler": WORKER}

# A resource as both sides name it: ("table", name) for a swept table, ("ledger",),
# ("queue",), ("dlq",), ("planner-failures",), ("logs", function), ("event-bus", name).
Resource = tuple[str, ...]
Grant = tuple[str, Resource]

# IAM has no action of its own for these batch operations: each entry needs the single one.
SQS_ACTIONS = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
PARTIQL_VERB = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|EXISTS)\b", re.IGNORECASE)
PARTIQL_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?([A-Za-z0-9_.-]+?)"?(?:\.|\s|$)', re.I)


@dataclass(frozen=True)
class Call:
    function: str
    service: str
    operation: str
    params: Mapping[str, Any]


@dataclass
class CallRecorder:
    """Records the functions' calls on the clients it is installed on."""

    calls: list[Call] = field(default_factory=list)

    def install(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build", self._record)

    def _record(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        function = calling_function()
        if function is not None:
            service = model.service_model.endpoint_prefix
            self.calls.append(Call(function, service, model.name, dict(params)))

    def operations(self) -> set[tuple[str, str]]:
        return {(call.function, call.operation) for call in self.calls}


def calling_function() -> str | None:
    """The function whose handler is running this call, from the Python stack.

    A call made while another call is in progress (a test's hook on the function's call
    writes to the table, say) is the harness's, not the function's: None.
    """
    frame = sys._getframe(1)
    calls_in_progress = 0
    function = None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_make_api_call" and code.co_filename.endswith("botocore/client.py"):
            calls_in_progress += 1
        function = function or HANDLER_MODULES.get(frame.f_globals.get("__name__", ""))
        frame = frame.f_back  # type: ignore[assignment]
    return function if calls_in_progress == 1 else None


def partiql_action(statement: str) -> tuple[str, str]:
    """``DELETE FROM "T" WHERE ...`` -> ("dynamodb:PartiQLDelete", "T")."""
    verb = PARTIQL_VERB.match(statement)
    table = PARTIQL_TABLE.search(statement)
    if verb is None or table is None:
        raise ValueError(f"cannot tell the action of PartiQL statement {statement!r}")
    word = verb.group(1).upper()
    action = "PartiQLSelect" if word == "EXISTS" else f"PartiQL{word.capitalize()}"
    return f"dynamodb:{action}", table.group(1)


def dynamodb_actions(operation: str, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """(IAM action, table name) pairs one DynamoDB call needs."""
    if operation in ("BatchWriteItem", "BatchGetItem"):
        for table in params["RequestItems"]:
            yield f"dynamodb:{operation}", table
    elif operation in ("TransactWriteItems", "TransactGetItems"):
        for item in params["TransactItems"]:
            ((kind, request),) = item.items()
            yield TRANSACT_ACTIONS[kind], request["TableName"]
    elif operation == "ExecuteStatement":
        yield partiql_action(params["Statement"])
    elif operation == "BatchExecuteStatement":
        for statement in params["Statements"]:
            yield partiql_action(statement["Statement"])
    elif operation == "ExecuteTransaction":
        for statement in params["TransactStatements"]:
            yield partiql_action(statement["Statement"])
    else:
        yield f"dynamodb:{operation}", params["TableName"]


def sqs_action(operation: str) -> str:
    return SQS_ACTIONS.get(operation, f"sqs:{operation}")


@dataclass(frozen=True)
class Names:
    """What the recorded run called its ledger and queues (the swept tables keep their names)."""

    ledger_table: str
    queues: Mapping[str, Resource]  # queue URL -> resource key


def required_grants(calls: Iterable[Call], names: Names) -> dict[str, set[Grant]]:
    """function -> the (action, resource) pairs its recorded calls need."""
    required: dict[str, set[Grant]] = {PLANNER: set(), WORKER: set()}
    for call in calls:
        if call.service == "dynamodb":
            for action, table in dynamodb_actions(call.operation, call.params):
                resource: Resource = (
                    ("ledger",) if table == names.ledger_table else ("table", table)
                )
                required[call.function].add((action, resource))
        elif call.service == "sqs":
            url = call.params["QueueUrl"]
            if url not in names.queues:
                raise AssertionError(f"{call.function} called {call.operation} on unknown {url}")
            required[call.function].add((sqs_action(call.operation), names.queues[url]))
        elif call.service == "events" and call.operation == "PutEvents":
            for entry in call.params["Entries"]:
                bus = entry.get("EventBusName", "default")
                required[call.function].add(("events:PutEvents", ("event-bus", bus)))
        else:
            raise AssertionError(f"{call.function} called {call.service}:{call.operation}")
    return required


# --- the template's side ------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_key(template: Mapping[str, Any], roles: Mapping[str, str], value: Any) -> Resource:
    """Name a statement's resource (a GetAtt of ours or an imported table's ARN)."""
    resources = template["Resources"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        kind = resources[logical_id]["Type"]
        if attribute == "Arn" and kind == "AWS::DynamoDB::Table":
            return ("ledger",)
        if attribute == "Arn" and kind == "AWS::SQS::Queue":
            return queue_key(template, logical_id)
        if attribute == "Arn" and kind == "AWS::Logs::LogGroup":
            owners = [
                roles[props["Role"]["Fn::GetAtt"][0]]
                for props in (
                    r["Properties"]
                    for r in resources.values()
                    if r["Type"] == "AWS::Lambda::Function"
                )
                if props.get("LoggingConfig", {}).get("LogGroup") == {"Ref": logical_id}
            ]
            return ("logs", *owners)
    if isinstance(value, dict) and "Fn::Join" in value:
        # An imported table: arn:${Partition}:dynamodb:${Region}:${AccountId}:table/NAME
        text = "".join(part for part in value["Fn::Join"][1] if isinstance(part, str))
        match = re.fullmatch(r"arn::dynamodb:::table/([A-Za-z0-9_.-]+)", text)
        if match:
            return ("table", match.group(1))
        # An imported event bus: arn:${Partition}:events:${Region}:${AccountId}:event-bus/NAME
        match = re.fullmatch(r"arn::events:::event-bus/([/.\-_A-Za-z0-9]+)", text)
        if match:
            return ("event-bus", match.group(1))
    raise AssertionError(f"a grant on a resource this check cannot name: {value!r}")


def queue_key(template: Mapping[str, Any], logical_id: str) -> Resource:
    resources = template["Resources"]
    props = resources[logical_id]["Properties"]
    if "RedrivePolicy" in props:
        return ("queue",)
    for other in resources.values():
        target = other.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn")
        if target == {"Fn::GetAtt": [logical_id, "Arn"]}:
            return ("dlq",)
    for other in resources.values():
        if other["Type"] == "AWS::Lambda::EventInvokeConfig":
            destination = other["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
            if destination == {"Fn::GetAtt": [logical_id, "Arn"]}:
                return ("planner-failures",)
    raise AssertionError(f"queue {logical_id} is neither the queue, its DLQ nor a destination")


def function_roles(template: Mapping[str, Any], handlers: Mapping[str, str]) -> dict[str, str]:
    """role logical id -> function ("planner"/"worker"), found by handler."""
    roles: dict[str, str] = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            props = resource["Properties"]
            roles[props["Role"]["Fn::GetAtt"][0]] = handlers[props["Handler"]]
    return roles


def granted(template: Mapping[str, Any], handlers: Mapping[str, str]) -> dict[str, set[Grant]]:
    """function -> every (action, resource) its role's policies allow."""
    roles = function_roles(template, handlers)
    grants: dict[str, set[Grant]] = {function: set() for function in roles.values()}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        functions = [roles[role["Ref"]] for role in resource["Properties"]["Roles"]]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow", statement
            for value in _as_list(statement["Resource"]):
                key = resource_key(template, roles, value)
                for action in _as_list(statement["Action"]):
                    for function in functions:
                        grants[function].add((action, key))
    return grants


def compare(
    required: Mapping[str, set[Grant]],
    grants: Mapping[str, set[Grant]],
    unrecorded: Mapping[str, Mapping[Grant, str]],
) -> list[str]:
    """Every disagreement between the calls and the roles, one line each (empty: they agree).

    A call without its grant is a failure on AWS; a grant no call uses is a dead grant unless
    ``unrecorded`` names it with the reason it is there (used by Lambda on the function's
    behalf, not by our code); an ``unrecorded`` entry that is not granted is stale.
    """
    problems: list[str] = []
    for function in sorted(set(required) | set(grants)):
        needed = required.get(function, set())
        allowed = grants.get(function, set())
        deliberate = set(unrecorded.get(function, {}))
        problems += [f"{function}: calls {a} on {r} without a grant" for a, r in needed - allowed]
        problems += [
            f"{function}: granted {a} on {r}, which no recorded call uses"
            for a, r in allowed - needed - deliberate
        ]
        problems += [
            f"{function}: {a} on {r} is listed as granted but unrecorded, and is not granted"
            for a, r in deliberate - allowed
        ]
    return sorted(problems)
