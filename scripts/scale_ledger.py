"""Drive the run consolidation alone (no sweeps) at scale against a DynamoDB endpoint.

One run of N segments is written as the planner writes it; then W threads finish
every segment as a worker's last checkpoint does (Ledger.checkpoint done=True, the
segment's move to done and the run's count in one transaction) and then ask
Ledger.finish_run_if_complete, as the worker does. On the way:

- every ``--duplicate-every``-th segment is finished twice (the same final
  checkpoint again: a redelivered message), and 50 more by two threads at the same
  moment (not on moto: its TransactWriteItems snapshots the whole table and restores
  it when a condition fails, wiping what other threads wrote meanwhile);
- one segment finished early is requeued from the start (the operator's
  ``scavenger requeue --from-start``) and finished again at its new hop.

It checks that the run ends done exactly once (one finisher got the totals), with
segments_done = N and totals equal to a model summed here independently, and
prints the figures as JSON. Usage:

    python scripts/scale_ledger.py --endpoint-url http://127.0.0.1:8000 --segments 200000
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from botocore.config import Config

from scavenger.ledger import Ledger
from scavenger.observability import logger
from scavenger.records import Counts, RunRecord, SegmentState
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.tools.provision import create_ledger_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def segment_counts(segment: int, hop: int = 0) -> Counts:
    """What segment ``segment`` reports at its finish (any deterministic spread)."""
    scanned = 50 + (segment * 7 + hop) % 31
    expired = scanned - (segment % 5)
    deleted = expired - (segment % 3)
    return Counts(
        scanned=scanned,
        expired=expired,
        deleted=deleted,
        skipped=segment % 3,
        pages=1,
        messages=1,
        worker_ms=10 + segment % 17,
    )


def reset_from_start(counts: Counts) -> Counts:
    """What a from-start requeue leaves of a segment's counters (Ledger.requeue_segment)."""
    kept = counts.deleted
    return replace(counts, scanned=kept, expired=kept, skipped=0, unparseable=0)


@dataclass
class Drive:
    segments: int
    finishes: int = 0
    duplicates: int = 0
    duplicates_counted: int = 0
    finishers: list[Counts] = field(default_factory=list)
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_retry(self) -> None:
        with self.lock:
            self.retries += 1

    def note_duplicate(self) -> None:
        with self.lock:
            self.duplicates += 1


def finish(
    ledger: Ledger, run_id: str, segment: int, hop: int, checkpoints: int, drive: Drive
) -> bool:
    """A worker's last page of ``segment``, then its look at the run."""
    written = ledger.checkpoint(
        run_id,
        segment,
        hop=hop,
        checkpoints=checkpoints,
        cursor=None,
        counts=segment_counts(segment, hop),
        done=True,
    )
    totals = ledger.finish_run_if_complete(run_id)
    with drive.lock:
        drive.finishes += 1
        if totals is not None:
            drive.finishers.append(totals)
        if drive.finishes % 10_000 == 0:
            print(f"{drive.finishes:,} finishes", file=sys.stderr, flush=True)
    return written


def create_run(
    ledger: Ledger, run_id: str, segments: int, *, sweep: str = "scale", table: str = "Scale"
) -> None:
    """A run of ``segments`` segments, written as the planner writes it."""
    ledger.create_run(
        RunRecord(
            run_id=run_id,
            sweep=sweep,
            table=table,
            total_segments=segments,
            cutoff="2026-11-21T02:00:00Z",
            dry_run=False,
            created_at="2026-11-23T02:00:00Z",
        )
    )


@dataclass(frozen=True)
class Scenario:
    """Who finishes which segment how: duplicates, concurrent pairs and one requeue."""

    ledger: Ledger
    run_id: str
    drive: Drive
    duplicate_every: int
    concurrent_pairs: int
    requeue: int

    def finish(self, segment: int, hop: int = 0, checkpoints: int = 0) -> bool:
        return finish(self.ledger, self.run_id, segment, hop, checkpoints, self.drive)

    def finish_early(self) -> SegmentState:
        """The requeued segment goes first, so it is done (and counted) before it is reopened."""
        self.finish(self.requeue)
        state = self.ledger.get_segment(self.run_id, self.requeue)
        assert state is not None and state.status == "done"
        return state

    def finish_segment(self, segment: int) -> None:
        """Every ``duplicate_every``-th segment twice: a redelivered message whose worker
        finishes the same last page again."""
        if segment == self.requeue:
            return
        self.finish(segment)
        if segment % self.duplicate_every == 0:
            self.drive.note_duplicate()
            self.finish(segment)

    def finish_concurrently(self, segment: int) -> None:
        """Two workers holding the same message finish it at the same moment."""
        with ThreadPoolExecutor(2) as pair:
            list(pair.map(lambda _: self.finish(segment), range(2)))
        self.drive.note_duplicate()

    def requeue_from_start(self, state: SegmentState) -> None:
        """Mid-run, the operator sends the early segment again from the start."""
        moved = self.ledger.requeue_segment(
            state, new_hop=1, nonce="scale", from_start=True, reopen_run=True
        )
        assert moved, "requeue from the start did not apply"
        assert self.ledger.get_run(self.run_id) is not None

    def finish_all(self, pool: ThreadPoolExecutor, segments: int) -> None:
        """Half the run, the requeue, the other half (some in concurrent pairs), and the
        requeued segment's new message (hop 1), which finishes it again."""
        state = self.finish_early()
        order = list(range(segments))
        half = segments // 2
        list(pool.map(self.finish_segment, order[:half]))
        self.requeue_from_start(state)
        concurrent = [s for s in order[half:] if s % self.duplicate_every == 1]
        concurrent = concurrent[: self.concurrent_pairs]
        list(pool.map(self.finish_segment, [s for s in order[half:] if s not in concurrent]))
        list(pool.map(self.finish_concurrently, concurrent))
        self.finish(self.requeue, 1, state.checkpoints)

    def expected_totals(self, segments: int) -> Counts:
        """The run's totals as a model sums them: the requeued segment kept its deletions."""
        expected = [segment_counts(segment) for segment in range(segments)]
        requeued = expected[self.requeue]
        expected[self.requeue] = reset_from_start(requeued) + segment_counts(self.requeue, 1)
        return sum(expected, Counts())


def drive_run(
    client: DynamoDBClient,
    table: str,
    segments: int,
    *,
    workers: int = 8,
    duplicate_every: int = 97,
    concurrent_pairs: int = 50,
    requeue: int = 1,
) -> dict[str, Any]:
    """Create a run of ``segments`` and finish it as described above; the figures."""
    drive = Drive(segments)
    ledger = Ledger(client, table, RetryPolicy(NoDeadline(), on_retry=drive.note_retry))
    scenario = Scenario(
        ledger,
        f"scale-{secrets.token_hex(4)}",
        drive,
        duplicate_every=duplicate_every,
        concurrent_pairs=concurrent_pairs,
        requeue=requeue,
    )
    started = time.monotonic()
    create_run(ledger, scenario.run_id, segments)
    created = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        scenario.finish_all(pool, segments)
    finished = time.monotonic()
    timings = {
        "create_seconds": round(created - started, 1),
        "finish_seconds": round(finished - created, 1),
        "finishes_per_second": round(drive.finishes / (finished - created), 1),
    }
    want = scenario.expected_totals(segments)
    return figures(scenario, segments, workers=workers, want=want, timings=timings)


def figures(
    scenario: Scenario, segments: int, *, workers: int, want: Counts, timings: dict[str, float]
) -> dict[str, Any]:
    """The run as the ledger holds it against the model, with the timings."""
    ledger, run_id, drive = scenario.ledger, scenario.run_id, scenario.drive
    run = ledger.get_run(run_id)
    assert run is not None
    sum_started = time.monotonic()
    done, summed = ledger.sum_done_segments(run_id)
    sum_seconds = time.monotonic() - sum_started
    return {
        "run_id": run_id,
        "segments": segments,
        "workers": workers,
        "status": run.status,
        "segments_done": run.segments_done,
        "done_segments_counted_by_query": done,
        "finishers": len(drive.finishers),
        "finishes": drive.finishes,
        "duplicate_finishes": drive.duplicates,
        "requeued_from_start": 1,
        "retries": drive.retries,
        "totals_match_model": run.totals == want == summed and drive.finishers == [want],
        "totals": run.totals.as_dict() if run.totals else None,
        **timings,
        "final_sum_seconds": round(sum_seconds, 1),
        "ok": run.status == "done"
        and run.segments_done == segments
        and len(drive.finishers) == 1
        and run.totals == want,
    }


def local_dynamodb(
    endpoint_url: str, region: str, *, max_pool_connections: int = 10
) -> DynamoDBClient:
    """A client of a local DynamoDB endpoint (any credentials do); botocore does not retry,
    so every retry is the ledger's own and counted."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(
            retries={"mode": "standard", "max_attempts": 1},
            max_pool_connections=max_pool_connections,
        ),
    )


def ensure_ledger_table(client: DynamoDBClient, name: str) -> None:
    if name not in client.list_tables()["TableNames"]:
        create_ledger_table(client, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--table", default="scale-ledger")
    parser.add_argument("--segments", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--duplicate-every", type=int, default=97)
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")  # a line per retry is noise here; the result counts them
    client = local_dynamodb(args.endpoint_url, args.region, max_pool_connections=64)
    ensure_ledger_table(client, args.table)
    result = drive_run(
        client,
        args.table,
        args.segments,
        workers=args.workers,
        duplicate_every=args.duplicate_every,
    )
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
