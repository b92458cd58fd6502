"""Measure the planner's work per segment, unsharded and sharded, and project it.

The ledger (and the swept table's DescribeTable) is on a DynamoDB endpoint (DynamoDB
Local); SQS is a counting stub that accepts every batch at once, so the figures are
the planner's own time plus DynamoDB's. For each segment count it prints the wall
time, the calls made, and a projection for AWS: calls x an assumed per-call latency
(``--dynamodb-ms``, ``--sqs-ms``; AWS documents single-digit milliseconds for DynamoDB
and no figure for SendMessageBatch; both are assumptions, not measurements).

    python scripts/scale_planner.py --endpoint-url http://127.0.0.1:8000 --segments 2000 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scale_ledger import ensure_ledger_table, local_dynamodb  # its sibling in scripts/

from scavenger.config import Sweep, parse_sweeps
from scavenger.ledger import Ledger
from scavenger.message import PlanShardMessage
from scavenger.observability import logger
from scavenger.plan import SHARD_SEGMENTS, SHARD_THRESHOLD, Planner, plan_shard
from scavenger.queue import SegmentQueue

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SWEPT = "ScaleSwept"
LEDGER_TABLE = "scale-planner-ledger"


class CountingSqs:
    """SendMessage/SendMessageBatch that succeed at once and keep the bodies."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        self.bodies += [entry["MessageBody"] for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def send_message(self, QueueUrl: str, MessageBody: str, **_: Any) -> dict[str, Any]:
        self.calls += 1
        self.bodies.append(MessageBody)
        return {"MessageId": "m"}


def counting(client: DynamoDBClient) -> Counter[str]:
    calls: Counter[str] = Counter()
    client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.update([model.name])
    )
    return calls


def scale_sweep(segments: int, *, sharded: bool) -> Sweep:
    """A sweep of ``segments`` segments on the swept table, named afresh for each run."""
    return parse_sweeps(
        [
            {
                "name": f"scale-{segments}-{'s' if sharded else 'u'}-{time.time_ns() % 10**6}",
                "table": SWEPT,
                "age_attribute": "ts",
                "age_format": "iso8601",
                "max_age": "48h",
                "segments": segments,
            }
        ]
    )[0]


def measure(
    client: DynamoDBClient, ledger_table: str, segments: int, *, sharded: bool
) -> dict[str, Any]:
    sweep = scale_sweep(segments, sharded=sharded)
    sqs = CountingSqs()
    calls = counting(client)
    ledger = Ledger(client, ledger_table)
    queue = SegmentQueue(sqs, "https://stub.invalid/q.fifo")
    planner = Planner(
        ledger=ledger,
        queue=queue,
        dynamodb=client,
        shard_threshold=SHARD_THRESHOLD if sharded else 10**9,
    )
    started = time.monotonic()
    result = planner.plan(sweep)
    planned = time.monotonic() - started
    figures: dict[str, Any] = {
        "segments": segments,
        "sharded": sharded,
        "planner_seconds": round(planned, 2),
        "planner_ms_per_segment": round(planned * 1000 / segments, 3),
        "planner_dynamodb_calls": dict(calls),
        "planner_sqs_calls": sqs.calls,
        "planner_calls": sum(calls.values()) + sqs.calls,
    }
    if sharded:
        figures |= {"shards": result.shards, **plan_shards(ledger, queue, sqs=sqs, calls=calls)}
    return figures


def plan_shards(
    ledger: Ledger, queue: SegmentQueue, *, sqs: CountingSqs, calls: Counter[str]
) -> dict[str, Any]:
    """Plan each shard the planner sent, as a worker does; each one's time and calls."""
    shards = [m for m in map(PlanShardMessage.parse_if_shard, sqs.bodies) if m is not None]
    calls.clear()
    sqs.calls = 0
    shard_seconds = []
    for shard in shards:
        began = time.monotonic()
        plan_shard(shard, ledger, queue)
        shard_seconds.append(time.monotonic() - began)
    return {
        "shard_seconds_max": round(max(shard_seconds), 2),
        "shard_seconds_mean": round(sum(shard_seconds) / len(shard_seconds), 2),
        "shard_calls_each": (sum(calls.values()) + sqs.calls) / len(shards),
        "shard_dynamodb_calls": dict(calls),
        "shard_sqs_calls": sqs.calls,
    }


def projection(dynamodb_ms: float, sqs_ms: float) -> dict[str, Any]:
    """Calls per segment count (from the code: 25 items a BatchWriteItem, 10 messages a
    SendMessageBatch, 100 keys a BatchGetItem) times the assumed latencies."""

    def unsharded(n: int) -> float:
        return (n / 25 * dynamodb_ms + n / 10 * sqs_ms) / 1000

    def planner(n: int) -> float:
        k = -(-n // SHARD_SEGMENTS)
        return (k / 25 * dynamodb_ms + k / 10 * sqs_ms) / 1000

    def shard() -> float:
        s = SHARD_SEGMENTS
        return ((s / 25 + s / 100 + 2) * dynamodb_ms + s / 10 * sqs_ms) / 1000

    return {
        "assumed_ms_per_call": {"dynamodb": dynamodb_ms, "sqs": sqs_ms},
        **{
            f"{n}_segments": {
                "unsharded_planner_seconds": round(unsharded(n), 1),
                "sharded_planner_seconds": round(planner(n), 2),
                "shards": -(-n // SHARD_SEGMENTS),
                "seconds_per_shard": round(shard(), 2),
            }
            for n in (100_000, 1_000_000)
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--segments", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--dynamodb-ms", type=float, default=10.0)
    parser.add_argument("--sqs-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")
    client = local_dynamodb(args.endpoint_url, args.region)
    ensure_ledger_table(client, LEDGER_TABLE)
    if SWEPT not in client.list_tables()["TableNames"]:
        client.create_table(
            TableName=SWEPT,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    runs = [
        measure(client, LEDGER_TABLE, n, sharded=sharded)
        for n in args.segments
        for sharded in (False, True)
    ]
    print(
        json.dumps(
            {"runs": runs, "projection": projection(args.dynamodb_ms, args.sqs_ms)}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
