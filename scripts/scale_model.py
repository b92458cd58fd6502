"""A projection, not a measurement: a 1,000,000,000-item table swept by Scavenger on AWS.

Every input is named in INPUTS with where it comes from: this repository's code
(segment sizing, shard size, page size, prices), a figure measured here (with the
command in README "Scale"), an AWS-documented quota, or an assumption. Prints the
model as Markdown tables:

    python scripts/scale_model.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scavenger.cost import Prices
from scavenger.plan import SHARD_SEGMENTS, Fleet, size_segments
from scavenger.settings import DEFAULT_PAGE_SIZE

ITEMS = 1_000_000_000
EXPIRED_SHARE = 0.97
ITEM_BYTES = 1024
WRITE_QUOTA = 40_000  # AWS: default per-table on-demand throughput quota (WRU/s)
MEMORY_GB = 0.5  # the stack's default worker memory
VCPU_SHARE = MEMORY_GB * 1024 / 1769  # AWS: one vCPU at 1,769 MB
CPU_MS_PER_DELETE = 0.97  # measured: worker CPU per deleted item (`scavenger bench`, README)
DYNAMODB_MS = 10.0  # assumed latency of one DynamoDB batch call on AWS
SQS_MS = 20.0  # assumed latency of one SendMessageBatch on AWS
SEGMENT_ITEM_BYTES = 300  # a segment's ledger item, projected counters only (measured here)

INPUTS = [
    ("items", f"{ITEMS:,}", "given"),
    ("expired", f"{EXPIRED_SHARE:.0%}, 1 KB items", "given"),
    ("table write quota", f"{WRITE_QUOTA:,} WRU/s", "AWS default on-demand table quota"),
    ("MaximumConcurrency", "50 (stack default) and 1,000 (AWS maximum)", "stack / AWS"),
    ("worker memory, vCPU", f"{MEMORY_GB} GB, {VCPU_SHARE:.2f} vCPU", "stack / AWS (1,769 MB)"),
    ("worker CPU per delete", f"{CPU_MS_PER_DELETE} ms", "measured: scavenger bench --cpu-only"),
    ("page size", f"{DEFAULT_PAGE_SIZE} items", "code"),
    ("shard", f"{SHARD_SEGMENTS:,} segments", "code"),
    ("DynamoDB / SQS call latency", f"{DYNAMODB_MS:g} / {SQS_MS:g} ms", "assumed"),
]


def main() -> int:
    prices = Prices()
    deletes = ITEMS * EXPIRED_SHARE
    table_bytes = ITEMS * ITEM_BYTES
    print("| input | value | source |\n| --- | --- | --- |")
    for name, value, source in INPUTS:
        print(f"| {name} | {value} | {source} |")
    print()
    print(
        "| MaximumConcurrency | segments | waves | planner | fleet time at 40,000 WRU/s "
        "| at 20,000 WRU/s | Lambda GB-s | Lambda | DynamoDB | ledger + SQS |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    # The stack's default, the concurrency that just reaches the quota, AWS's maximum.
    enough = math.ceil(WRITE_QUOTA / (VCPU_SHARE / (CPU_MS_PER_DELETE / 1000)) / 10) * 10
    for concurrency in (50, enough, 1_000):
        fleet = Fleet(worker_timeout_seconds=300, max_concurrency=concurrency)
        sizing = size_segments(ITEMS, table_bytes, fleet=fleet)
        segments = sizing.segments
        waves = math.ceil(segments / concurrency)
        shards = math.ceil(segments / SHARD_SEGMENTS)
        planner_s = (shards / 25 * DYNAMODB_MS + shards / 10 * SQS_MS) / 1000
        # A worker deletes at most 1 / (CPU per delete / its vCPU share) items a second.
        cpu_rate = concurrency * VCPU_SHARE / (CPU_MS_PER_DELETE / 1000)
        times = [deletes / min(quota, cpu_rate) for quota in (WRITE_QUOTA, WRITE_QUOTA / 2)]
        gb_seconds = concurrency * times[0] * MEMORY_GB  # every worker busy the whole time
        lambda_cost = gb_seconds * prices.lambda_gb_second
        scan_rru = table_bytes / 4096 * 0.5  # eventually consistent Scan
        dynamodb = deletes * prices.write_unit + scan_rru * prices.read_unit
        pages = ITEMS / DEFAULT_PAGE_SIZE
        ledger_wru = segments * (1 + 4) + pages  # create, finish transaction, checkpoints
        ledger_rru = segments * 2 + segments * SEGMENT_ITEM_BYTES / 4096
        messages = segments + shards + times[0] / 250 * concurrency  # continuations
        ledger = ledger_wru * prices.write_unit + ledger_rru * prices.read_unit
        ledger += messages * 1.3 * prices.sqs_request
        print(
            f"| {concurrency:,} | {segments:,} | {waves:,} | {planner_s:.1f} s + "
            f"{shards} shards | {times[0] / 3600:.1f} h | {times[1] / 3600:.1f} h | "
            f"{gb_seconds / 1e6:.1f} M | ${lambda_cost:,.0f} | ${dynamodb:,.0f} | ${ledger:,.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
