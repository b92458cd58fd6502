"""Create the ledger table and the FIFO queue pair (local emulator and tests).

On AWS the CDK stack creates these; the shapes here match it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scavenger.schema import (
    DLQ_RETENTION_DAYS,
    LEDGER_KEY_TYPE,
    LEDGER_PARTITION_KEY,
    LEDGER_SORT_KEY,
    MAX_RECEIVE_COUNT,
    TTL_ATTRIBUTE,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class Queues:
    queue_url: str
    dlq_url: str


def create_ledger_table(dynamodb: DynamoDBClient, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": LEDGER_PARTITION_KEY, "AttributeType": LEDGER_KEY_TYPE},
            {"AttributeName": LEDGER_SORT_KEY, "AttributeType": LEDGER_KEY_TYPE},
        ],
        KeySchema=[
            {"AttributeName": LEDGER_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": LEDGER_SORT_KEY, "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


def create_queues(
    sqs: SQSClient,
    name: str,
    *,
    visibility_timeout: int = 60,
    max_receive_count: int = MAX_RECEIVE_COUNT,
) -> Queues:
    """A FIFO queue whose redrive policy sends to a FIFO DLQ after ``max_receive_count``."""
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq.fifo",
        Attributes={"FifoQueue": "true", "MessageRetentionPeriod": str(DLQ_RETENTION_DAYS * 86400)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"{name}.fifo",
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
            ),
        },
    )["QueueUrl"]
    return Queues(queue_url=queue_url, dlq_url=dlq_url)
