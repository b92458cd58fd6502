"""Worker CPU per deleted item against a bare boto3 Scan + DeleteItem loop,
both on canned responses (no network, no emulator).

The worker runs as configured (``delete_mode`` batch by default: canned
BatchExecuteStatement answers, each statement's old item returned); the bare
loop is the best a per-item deleter can do: Scan, then one conditional
DeleteItem per item, nothing else. Their ratio is ``worker_cpu_vs_bare_item``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from scavenger.batch import handle
from scavenger.config import parse_sweeps
from scavenger.expiry import AGE_VALUE, Expressions
from scavenger.ledger_store import RUN_PART, key, number, string
from scavenger.message import SegmentMessage
from scavenger.observability import logger
from scavenger.runtime import Runtime
from scavenger.settings import Settings
from scavenger.tools.bench.canned import canned_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "Workers"
KEYS = ("WorkerId", "StartTime")
CUTOFF = datetime(2026, 11, 21, 2, 0, 0, tzinfo=UTC)
# `"Name" = ?` in a PartiQL statement: which parameter pins which attribute.
PINNED = re.compile(r'"((?:[^"]|"")+)"\s*=\s*\?')


@dataclass(frozen=True)
class CpuResult:
    items: int
    worker_us_per_item: float
    bare_us_per_item: float

    @property
    def ratio(self) -> float:
        return self.worker_us_per_item / self.bare_us_per_item

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "worker_cpu_us_per_deleted_item": round(self.worker_us_per_item, 1),
            "bare_boto3_cpu_us_per_deleted_item": round(self.bare_us_per_item, 1),
            "worker_vs_bare_cpu": round(self.ratio, 3),
        }


def _page(pages: int, page_size: int) -> Any:
    """A Scan responder: ``pages`` pages of expired items, then the end."""
    served = {"pages": 0}
    expired = (CUTOFF - timedelta(days=3)).isoformat().replace("+00:00", "Z")

    def scan(request: dict[str, Any]) -> dict[str, Any]:
        page = served["pages"] % pages
        served["pages"] += 1
        items = [
            {
                "WorkerId": {"N": str(page * page_size + index)},
                "StartTime": {"S": f"2026-11-{index % 28 + 1:02d}T00:00:00Z"},
                "StartExecutionTime": {"S": expired},
                "Completed": {"N": "1"},
            }
            for index in range(page_size)
        ]
        response: dict[str, Any] = {
            "Items": items,
            "Count": page_size,
            "ScannedCount": page_size,
            "ConsumedCapacity": {"TableName": TABLE, "CapacityUnits": 64.0},
        }
        if page < pages - 1:
            response["LastEvaluatedKey"] = {k: items[-1][k] for k in KEYS}
        return response

    return scan


def _batch_execute(request: dict[str, Any]) -> dict[str, Any]:
    """Every DELETE succeeds and returns the old item (what it pinned, rebuilt)."""
    responses = []
    for statement in request["Statements"]:
        names = [name.replace('""', '"') for name in PINNED.findall(statement["Statement"])]
        old = dict(zip(names, statement.get("Parameters", []), strict=False))
        responses.append({"TableName": TABLE, "Item": old})
    capacity = {"TableName": TABLE, "CapacityUnits": float(len(responses))}
    return {"Responses": responses, "ConsumedCapacity": [capacity]}


def _segment_item(part: str) -> dict[str, Any]:
    return {
        **key("bench", part),
        "status": string("pending"),
        "hop": number(0),
        "cursor": string("null"),
        "checkpoints": number(0),
    }


def _run_item() -> dict[str, Any]:
    return {
        **key("bench", RUN_PART),
        "sweep": string("bench"),
        "table": string(TABLE),
        "total_segments": number(2),
        "cutoff": string("2026-11-21T02:00:00Z"),
        "dry_run": {"BOOL": False},
        "created_at": string("2026-11-23T02:00:00Z"),
        "status": string("running"),
        "segments_done": number(1),  # one of its two segments counted
    }


def _ledger_get(request: dict[str, Any]) -> dict[str, Any]:
    part = request["Key"]["part"]["S"]
    return {"Item": _run_item() if part == RUN_PART else _segment_item(part)}


def _ledger_batch_get(request: dict[str, Any]) -> dict[str, Any]:
    """The claim's read: the segment item and its run item, in one call."""
    ((table, wanted),) = request["RequestItems"].items()
    items = [
        _run_item() if part == RUN_PART else _segment_item(part)
        for part in (requested["part"]["S"] for requested in wanted["Keys"])
    ]
    return {"Responses": {table: items}, "UnprocessedKeys": {}}


def _ledger_update(request: dict[str, Any]) -> dict[str, Any]:
    return {}


def _dynamodb(pages: int, page_size: int) -> DynamoDBClient:
    return canned_client(
        "dynamodb",
        {
            "Scan": _page(pages, page_size),
            "DeleteItem": lambda r: {
                "ConsumedCapacity": {"TableName": TABLE, "CapacityUnits": 1.0}
            },
            "BatchExecuteStatement": _batch_execute,
            "DescribeTable": lambda r: {
                "Table": {
                    "TableName": TABLE,
                    "KeySchema": [
                        {"AttributeName": "WorkerId", "KeyType": "HASH"},
                        {"AttributeName": "StartTime", "KeyType": "RANGE"},
                    ],
                }
            },
            "GetItem": _ledger_get,
            "BatchGetItem": _ledger_batch_get,
            "UpdateItem": _ledger_update,
            "TransactWriteItems": lambda r: {},  # the last checkpoint, counted in the run
        },
    )


SWEEP = {
    "name": "bench",
    "table": TABLE,
    "age_attribute": "StartExecutionTime",
    "age_format": "iso8601",
    "max_age": "48h",
    "where": "#c IN (:n1, :s1)",
    "names": {"#c": "Completed"},
    "values": {":n1": 1, ":s1": "1"},
    "delete_mode": "batch",
}


class _Context:
    function_name = "bench"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def worker_cpu(pages: int, page_size: int) -> float:
    """CPU seconds for the worker handler to sweep one segment of pages x page_size."""
    sweeps = parse_sweeps([SWEEP])
    sqs = canned_client("sqs", {"SendMessage": lambda r: {"MessageId": "m"}})
    runtime = Runtime(
        settings=Settings(
            queue_url="https://canned.invalid/q.fifo", ledger_table="ledger", page_size=page_size
        ),
        sweeps=sweeps,
        dynamodb=_dynamodb(pages, page_size),
        sqs=sqs,
    )
    message = SegmentMessage("bench", "bench", TABLE, 1, 2, CUTOFF)
    event = {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r",
                "body": message.to_json(),
                "attributes": {"MessageGroupId": message.group_id},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q.fifo",
                "awsRegion": "us-east-1",
            }
        ]
    }
    # Logs and EMF lines are written as in Lambda (their cost counts), into a buffer.
    log_handler = cast(logging.StreamHandler, logger.registered_handler)  # type: ignore[type-arg]
    log_stream = log_handler.setStream(io.StringIO())
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            started = time.process_time()
            response = handle(event, _Context(), runtime)
            spent = time.process_time() - started
    finally:
        if log_stream is not None:
            log_handler.setStream(log_stream)
    if response["batchItemFailures"]:
        raise RuntimeError(f"benchmark worker failed: {response}")
    return spent


def bare_cpu(pages: int, page_size: int) -> float:
    """CPU seconds for Scan pages and a conditional DeleteItem per item, bare boto3:
    the worker's requests (projection, filter, condition, consumed capacity), no more."""
    client = _dynamodb(pages, page_size)
    expressions = Expressions.build(parse_sweeps([SWEEP])[0], KEYS)
    started = time.process_time()
    cursor = None
    while True:
        request: dict[str, Any] = {
            "TableName": TABLE,
            "Segment": 1,
            "TotalSegments": 2,
            "Limit": page_size,
            "ReturnConsumedCapacity": "TOTAL",
            "ProjectionExpression": expressions.projection,
            "ExpressionAttributeNames": expressions.projection_names | expressions.filter_names,
            "FilterExpression": expressions.filter,
            "ExpressionAttributeValues": expressions.filter_values,
        }
        if cursor:
            request["ExclusiveStartKey"] = cursor
        page = client.scan(**request)
        for item in page["Items"]:
            client.delete_item(
                TableName=TABLE,
                Key={name: item[name] for name in KEYS},
                ConditionExpression=expressions.delete_condition,
                ExpressionAttributeNames=expressions.delete_names,
                ExpressionAttributeValues={
                    AGE_VALUE: item["StartExecutionTime"],
                    **expressions.user_values,
                },
                ReturnConsumedCapacity="TOTAL",
            )
        cursor = page.get("LastEvaluatedKey")
        if not cursor:
            return time.process_time() - started


def measure(pages: int = 10, page_size: int = 500, repeats: int = 3) -> CpuResult:
    """Medians of ``repeats`` alternating runs of each, after one warm-up of each."""
    worker_cpu(1, 50)
    bare_cpu(1, 50)
    worker, bare = [], []
    for _ in range(repeats):
        worker.append(worker_cpu(pages, page_size))
        bare.append(bare_cpu(pages, page_size))
    items = pages * page_size
    return CpuResult(
        items=items,
        worker_us_per_item=statistics.median(worker) / items * 1e6,
        bare_us_per_item=statistics.median(bare) / items * 1e6,
    )
