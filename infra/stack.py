"""The Scavenger stack and the one way to build it from CDK context (used by app.py and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.alarms import FleetAlarms
from infra.bundling import lambda_code
from infra.functions import RUNTIME, SweepFunctions
from infra.ledger import LedgerTable
from infra.queues import SweepQueues
from infra.reports import RunReports
from infra.settings import StackSettings, context_flag

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STACK_NAME = "Scavenger"
# The context key CDK reads to decide which stacks bundle their assets (cx-api BUNDLING_STACKS).
BUNDLING_STACKS = "aws:cdk:bundling-stacks"


class ScavengerStack(cdk.Stack):
    """Queue + DLQ, ledger, planner on a schedule, worker fleet on the queue, alarms.

    The outputs ``QueueUrl``, ``DlqUrl``, ``LedgerTableName`` and ``PlannerFailureQueueUrl``
    are a contract: the CLI's ``--stack NAME`` reads them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        queues = SweepQueues(
            self, "Queues", worker_timeout=cdk.Duration.seconds(settings.worker_timeout_seconds)
        )
        ledger = LedgerTable(self, "Ledger")
        functions = SweepFunctions(
            self,
            "Functions",
            code=lambda_code(root=REPO_ROOT, runtime=RUNTIME),
            settings=settings,
            queues=queues,
            ledger=ledger.table,
        )
        FleetAlarms(
            self,
            "Alarms",
            queues=queues,
            planner=functions.planner,
            worker=functions.worker,
            oldest_message_age=cdk.Duration.seconds(settings.oldest_message_alarm_seconds),
            topic_arn=settings.alarm_topic_arn,
        )
        RunReports(
            self,
            "Reports",
            settings=settings,
            queues=queues,
            functions=functions,
            ledger=ledger.table,
        )
        self._outputs(queues, ledger.table)

    def _outputs(self, queues: SweepQueues, ledger: dynamodb.ITable) -> None:
        """The outputs the CLI's ``--stack NAME`` reads."""
        outputs = (
            ("QueueUrl", queues.queue.queue_url, "Segment queue (FIFO)"),
            (
                "DlqUrl",
                queues.dead_letter_queue.queue_url,
                "Dead-letter queue (FIFO): `scavenger dlq`, `scavenger redrive`",
            ),
            (
                "PlannerFailureQueueUrl",
                queues.planner_failures.queue_url,
                "Failed scheduled planner runs: `scavenger plan --from-failed`",
            ),
            (
                "LedgerTableName",
                ledger.table_name,
                "Run and segment checkpoints: `scavenger status`",
            ),
        )
        for output_id, value, description in outputs:
            cdk.CfnOutput(self, output_id, value=value, description=description)


def build(app: cdk.App) -> ScavengerStack:
    """Add the stack to ``app`` as its context says, with cdk-nag checking every synth.

    Context ``skip_bundling`` builds no asset (tests and offline checks); ``stack_name`` names
    the stack (default ``Scavenger``). Raises ConfigError on invalid context.
    """
    if context_flag(app.node, "skip_bundling"):
        app.node.set_context(BUNDLING_STACKS, [])
    stack_name = str(app.node.try_get_context("stack_name") or DEFAULT_STACK_NAME)
    stack = ScavengerStack(
        app,
        stack_name,
        settings=StackSettings.from_context(app.node),
        description="Scavenger: deletes stale DynamoDB items with an SQS-fed Lambda fleet",
    )
    add_compliance_checks(app)
    return stack


def add_compliance_checks(app: cdk.App) -> None:
    """cdk-nag's AwsSolutions pack runs on every synth; any violation fails it.

    cdk-nag 3 is a policy-validation plugin: a finding is acknowledged, with its reason, by
    ``cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=..., reason=...))`` on
    the construct concerned. The stack needs none today.
    """
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
