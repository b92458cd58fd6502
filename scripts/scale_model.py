"""A projection, not a measurement: a 1,000,000,000-item table swept by Scavenger on AWS.

Every input is named in INPUTS with where it comes from: this repository's code
(segment sizing, shard size, page size, prices), a figure measured here (with the
command in README "Scale"), an AWS-documented quota, or an assumption. Prints the
model as Markdown tables:

    python scripts/scale_model.py

``--original`` prints instead the projection for the original 130,000-item table on
the batch path (README "Performance"), its segment counts from the planner's own
sizing (scavenger.sizing) and the worker CPU that ``scavenger bench`` measured.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scavenger.cost import Prices
from scavenger.plan import SHARD_SEGMENTS
from scavenger.settings import DEFAULT_PAGE_SIZE
from scavenger.sizing import DEFAULT_BATCH_ITEMS_PER_WORKER_SECOND, Fleet, size_segments

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


# The original table (README "Projection"): items, deleted, the batch path's inputs.
ORIGINAL_ITEMS, ORIGINAL_DELETED = 130_000, 126_700
WORKER_CPU_US = 98.8  # measured: batch path, CPU bench (`scavenger bench`, canned responses)
PAGE_MS = 35.0  # assumed: one page's Scan (30 ms) and checkpoint (5 ms)
START_SECONDS = 3.0  # assumed: schedule, planner, SQS, event source, cold start
TABLE_WRITE_UNITS = 4_000  # AWS: a new on-demand table's write throughput


def original_run(budget: float, batch_ms: float, rate: float, share: float) -> dict[str, float]:
    """One run at ``budget`` units/s, its segments sized by the planner from ``rate``
    items per worker-second and ``share`` write units per item (its last run's, or
    the default); each worker deletes at min(its speed, its share of the budget)."""
    speed = 1 / (WORKER_CPU_US / 1e6 / VCPU_SHARE + batch_ms / 1000 / 25 + PAGE_MS / 1000 / 500)
    segments = size_segments(
        ORIGINAL_ITEMS,
        ORIGINAL_ITEMS * ITEM_BYTES,
        items_per_worker_second=rate,
        write_units_per_second=budget,
        write_units_per_item=share,
    ).segments
    each = min(speed, budget / min(segments, 50))
    fleet = min(segments, 50) * each
    billed = ORIGINAL_DELETED / each  # every worker bills until its segment is done
    cost = billed * MEMORY_GB * Prices().lambda_gb_second + (segments + 1) * 0.2e-6
    scanned_rate = each * ORIGINAL_ITEMS / ORIGINAL_DELETED  # what the ledger measures
    return {
        "speed": speed,
        "segments": segments,
        "fleet": fleet,
        "wall": START_SECONDS + ORIGINAL_DELETED / fleet,
        "gb_seconds": billed * MEMORY_GB,
        "cost": cost,
        "measured_rate": scanned_rate,
    }


def original() -> int:
    """The original table, first run (the default rate) and the run after it (the rate
    the first one measured), at the default budget and at the table's whole rate."""
    print(
        "| budget | run | L_b | one worker | segments | fleet | wall | budget floor "
        "| billed | Lambda cost |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    share = ORIGINAL_DELETED / ORIGINAL_ITEMS
    for budget, name in ((TABLE_WRITE_UNITS / 2, "default (half)"), (TABLE_WRITE_UNITS, "4,000")):
        for batch_ms in (10.0, 20.0, 40.0):
            first = original_run(budget, batch_ms, DEFAULT_BATCH_ITEMS_PER_WORKER_SECOND, 1.0)
            second = original_run(budget, batch_ms, first["measured_rate"], share)
            for run, label in ((first, "first"), (second, "next")):
                print(
                    f"| {name} | {label} | {batch_ms:g} ms | {run['speed']:,.0f}/s "
                    f"| {run['segments']} | {run['fleet']:,.0f}/s | {run['wall']:.1f} s "
                    f"| {ORIGINAL_DELETED / budget:.1f} s | {run['gb_seconds']:.0f} GB-s "
                    f"| ${run['cost']:.4f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(original() if "--original" in sys.argv[1:] else main())
