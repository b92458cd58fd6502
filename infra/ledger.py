"""The ledger table: run and segment checkpoints, the source of truth for where a segment is."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.checkov import skip_checks
from scavenger.schema import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY, TTL_ATTRIBUTE

# The ledger's keys are strings (scavenger.schema.LEDGER_KEY_TYPE, "S").
KEY_TYPE = dynamodb.AttributeType.STRING


class LedgerTable(Construct):
    """pk ``run_id``, sk ``part``; on demand, point-in-time recovery, items expire by TTL.

    The table is retained when the stack is deleted: it holds the history of past runs.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=LEDGER_PARTITION_KEY, type=KEY_TYPE),
            sort_key=dynamodb.Attribute(name=LEDGER_SORT_KEY, type=KEY_TYPE),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.RETAIN,
        )
        skip_checks(
            self.table,
            {
                "CKV_AWS_119": "Encrypted at rest with the AWS owned key (DynamoDB's default). "
                "The ledger holds checkpoints: run ids, counts and cursors (keys of swept "
                "items). A customer managed key adds cost and key administration; a deployer "
                "whose swept keys are sensitive may choose one"
            },
        )
