"""Where the queue, the DLQ, the ledger and the planner failure queue are, so an
operator never copies URLs.

Each resource comes from the first source that names it: the config file's
``[resources]`` table, then the ``SCAVENGER_*`` environment variables, then the
outputs of the CloudFormation stack named by ``--stack`` (``QueueUrl``,
``DlqUrl``, ``LedgerTableName``, ``PlannerFailureQueueUrl``). The DLQ may also be
found from the queue's redrive policy. An explicit ``--stack`` whose outputs
disagree with an earlier source is refused: naming one stack and acting on
another's queue is the mistake this module exists to prevent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from scavenger.config import RESOURCE_KEYS
from scavenger.dlq import dlq_from_redrive_policy
from scavenger.errors import ScavengerError, error_code

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

QUEUE_URL = "queue_url"
DLQ_URL = "dlq_url"
LEDGER_TABLE = "ledger_table"
# The planner's on-failure destination: scheduled runs that failed after Lambda's retries.
PLANNER_FAILURES_URL = "planner_failures_url"
RESOURCE_NAMES = (QUEUE_URL, DLQ_URL, LEDGER_TABLE, PLANNER_FAILURES_URL)

ENVIRONMENT_VARIABLES = {
    QUEUE_URL: "SCAVENGER_QUEUE_URL",
    DLQ_URL: "SCAVENGER_DLQ_URL",
    LEDGER_TABLE: "SCAVENGER_LEDGER_TABLE",
    PLANNER_FAILURES_URL: "SCAVENGER_PLANNER_FAILURES_URL",
}
STACK_OUTPUTS = {
    QUEUE_URL: "QueueUrl",
    DLQ_URL: "DlqUrl",
    LEDGER_TABLE: "LedgerTableName",
    PLANNER_FAILURES_URL: "PlannerFailureQueueUrl",
}
LABELS = {
    QUEUE_URL: "queue",
    DLQ_URL: "DLQ",
    LEDGER_TABLE: "ledger table",
    PLANNER_FAILURES_URL: "planner failure queue",
}


@dataclass(frozen=True)
class Found:
    """One resource and where it was found (shown to the operator)."""

    value: str
    source: str


class Resources:
    """The discovered resources; asking for a missing one is a one-line user error."""

    def __init__(
        self, found: Mapping[str, Found], sqs: SQSClient, outputs: Mapping[str, str] | None = None
    ):
        self._found = dict(found)
        self._sqs = sqs
        self._dlq_looked_up = False
        # Every output of the ``--stack`` stack (DashboardName, EventBusName, ...).
        self.stack_outputs = dict(outputs or {})

    @property
    def queue_url(self) -> str:
        return self._require(QUEUE_URL)

    @property
    def ledger_table(self) -> str:
        return self._require(LEDGER_TABLE)

    @property
    def planner_failures_url(self) -> str:
        return self._require(PLANNER_FAILURES_URL)

    @property
    def dlq_url(self) -> str:
        url = self.optional_dlq_url()
        if url is None:
            raise ScavengerError(
                "DLQ: not found: set [resources] dlq_url in the config or SCAVENGER_DLQ_URL, "
                "pass --stack NAME, or give the queue a redrive policy"
            )
        return url

    def optional_dlq_url(self) -> str | None:
        """The DLQ, falling back to the queue's redrive policy; None if there is none."""
        if DLQ_URL not in self._found and not self._dlq_looked_up and QUEUE_URL in self._found:
            self._dlq_looked_up = True
            url = dlq_from_redrive_policy(self._sqs, self._found[QUEUE_URL].value)
            if url is not None:
                self._found[DLQ_URL] = Found(url, "the queue's redrive policy")
        found = self._found.get(DLQ_URL)
        return found.value if found else None

    def source(self, name: str) -> str | None:
        found = self._found.get(name)
        return found.source if found else None

    def to_json(self) -> dict[str, dict[str, str]]:
        return {
            name: {"value": found.value, "source": found.source}
            for name, found in self._found.items()
        }

    def _require(self, name: str) -> str:
        found = self._found.get(name)
        if found is None:
            in_config = f"[resources] {name} in the config or " if name in RESOURCE_KEYS else ""
            raise ScavengerError(
                f"{LABELS[name]}: not found: set {in_config}"
                f"{ENVIRONMENT_VARIABLES[name]}, or pass --stack NAME"
            )
        return found.value


def discover(
    *,
    config_resources: Mapping[str, str],
    env: Mapping[str, str],
    stack: str | None,
    cloudformation: Callable[[], Any],
    sqs: SQSClient,
) -> Resources:
    """Resolve each resource from config, then environment, then the stack's outputs.

    ``cloudformation`` makes the client; it is called only when ``stack`` is given.
    """
    found: dict[str, Found] = {}
    outputs: dict[str, str] = {}
    for name in RESOURCE_NAMES:
        if config_resources.get(name):
            found[name] = Found(config_resources[name], f"config [resources] {name}")
        elif env.get(ENVIRONMENT_VARIABLES[name]):
            found[name] = Found(env[ENVIRONMENT_VARIABLES[name]], ENVIRONMENT_VARIABLES[name])
    if stack:
        outputs = stack_outputs(cloudformation(), stack)
        for name, output in STACK_OUTPUTS.items():
            value = outputs.get(output)
            if value is None:
                continue
            if name in found and found[name].value != value:
                raise ScavengerError(
                    f"--stack {stack}: its {output} ({value}) differs from "
                    f"{found[name].source} ({found[name].value}); remove one of them"
                )
            found.setdefault(name, Found(value, f"stack {stack} output {output}"))
    return Resources(found, sqs, outputs)


# What CloudFormation accepts as StackName: a stack's name or its id (an ARN).
STACK_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}|arn:[-A-Za-z0-9:/._+]+")


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The stack's outputs by key; an unknown stack is a one-line user error."""
    if not STACK_NAME.fullmatch(stack):
        raise ScavengerError(
            f"--stack {stack!r}: not a stack name (a letter, then letters, digits and "
            "hyphens, at most 128) or a stack ARN"
        )
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise ScavengerError(
            f"--stack {stack}: {error_code(exc)}: {message or 'DescribeStacks failed'}"
        ) from exc
    except BotoCoreError as exc:
        raise ScavengerError(f"--stack {stack}: {exc}") from exc
    if not stacks:
        raise ScavengerError(f"--stack {stack}: no such stack")
    return {
        output["OutputKey"]: output["OutputValue"]
        for output in stacks[0].get("Outputs", [])
        if "OutputKey" in output and "OutputValue" in output
    }
