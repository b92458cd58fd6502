"""Ledger table: run_id/part keys, on demand, point-in-time recovery, TTL on expires_at."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

pytestmark = pytest.mark.infra


def test_ledger_is_keyed_by_run_id_and_part(template: Template) -> None:
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "run_id", "KeyType": "HASH"},
                {"AttributeName": "part", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": "run_id", "AttributeType": "S"},
                {"AttributeName": "part", "AttributeType": "S"},
            ],
        },
    )


def test_ledger_is_on_demand_with_point_in_time_recovery(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )


def test_ledger_items_expire_by_ttl_on_expires_at(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {"TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True}},
    )


def test_ledger_outlives_the_stack(template: Template) -> None:
    template.has_resource(
        "AWS::DynamoDB::Table", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )
