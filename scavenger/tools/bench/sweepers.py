"""The bench's own sweepers, each run in child processes: raw, raw_item and baseline.

They scan and delete through the worker's own table adapter (``SweptTable``) and
age rule (``AgeRule``), with nothing else around them: no ledger, no queue, no
Lambda runtime. The adapter's first attempt at a call is the bare boto3 call (its
retry policy steps in only after a throttle), so what they measure is the engine
and boto3, not a second copy of the worker's logic.

- ``raw``: one segment per process, each page's expired items deleted the way
  the worker's batch path deletes them (PartiQL BatchExecuteStatement, up to 25
  conditional DELETEs a call) where the engine runs PartiQL faithfully; the
  conditional DeleteItem elsewhere (moto, dynalite).
- ``raw_item``: one segment per process, a conditional DeleteItem per item.
- ``baseline``: one process, a reader thread per segment feeding a bounded queue
  drained by a pool of deleter threads (conditional DeleteItem): the original
  single-function design, written plainly.
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig

from scavenger.aws import BOTO_CONFIG
from scavenger.config import DeleteMode, Sweep
from scavenger.expiry import Age, AgeRule, Expressions
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.table import MAX_STATEMENTS, Deleted, SweptTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class SweepJob:
    """What a bench process needs: where the table is, what to delete, and how."""

    endpoint_url: str
    region: str
    table: str
    keys: tuple[str, ...]
    sweep: Sweep
    total_segments: int
    cutoff: datetime
    page_size: int
    delete_mode: DeleteMode = "item"
    segment: int = 0  # raw, raw_item: this process's segment
    deleters: int = 0  # baseline: the size of the deleter pool


def swept_table(client: DynamoDBClient, job: SweepJob) -> SweptTable:
    """The worker's adapter for ``job``'s table; no budget, as a CLI command has none."""
    expressions = Expressions.build(replace(job.sweep, delete_mode=job.delete_mode), job.keys)
    return SweptTable(client, job.table, job.keys, expressions, RetryPolicy(NoDeadline()))


def expired_pages(
    table: SweptTable, rule: AgeRule, job: SweepJob, segment: int, calls: Counter[str]
) -> Iterator[list[dict[str, Any]]]:
    """Each page's expired items, scanned and classified as the worker does."""
    cursor = None
    while True:
        page = table.scan_page(segment, job.total_segments, cursor, job.page_size)
        calls["Scan"] += 1
        yield [item for item in page.items if rule.classify(item) is Age.EXPIRED]
        if page.last_key is None:
            return
        cursor = page.last_key


def delete_items(
    table: SweptTable, job: SweepJob, items: list[dict[str, Any]], calls: Counter[str]
) -> None:
    """Delete ``items`` one conditional DeleteItem each (a failed condition is a skip)."""
    attribute = job.sweep.age_attribute
    for item in items:
        table.delete_if_unchanged(item, item[attribute])
        calls["DeleteItem"] += 1


def delete_batches(table: SweptTable, items: list[dict[str, Any]], calls: Counter[str]) -> None:
    """Delete ``items`` in BatchExecuteStatement calls of up to 25 pinned DELETEs, as the
    worker's batch path sends them. The bench's tables have no other writer: a statement
    that did not delete its item fails the run."""

    def verdict(item: dict[str, Any], deleted: Deleted, current: dict[str, Any] | None) -> None:
        if deleted is not Deleted.DELETED:
            raise RuntimeError(f"a statement found its item {deleted.value}")

    for start in range(0, len(items), MAX_STATEMENTS):
        table.delete_batch(items[start : start + MAX_STATEMENTS], verdict)
        calls["BatchExecuteStatement"] += 1


def raw_process(connection: Connection, job: SweepJob) -> None:
    """Child: Scan one segment and delete what is expired, batched or per item."""

    def work(client: DynamoDBClient, calls: Counter[str]) -> None:
        table = swept_table(client, job)
        rule = AgeRule(job.sweep.age_attribute, job.sweep.age_format, job.cutoff)
        for expired in expired_pages(table, rule, job, job.segment, calls):
            if job.delete_mode == "batch":
                delete_batches(table, expired, calls)
            else:
                delete_items(table, job, expired, calls)

    serve(connection, job, work, pool=1)


def baseline_process(connection: Connection, job: SweepJob) -> None:
    """Child: the original single-function design (``Baseline``)."""
    serve(
        connection,
        job,
        lambda client, calls: Baseline(client, job, calls).run(),
        pool=job.total_segments + job.deleters,
    )


class Baseline:
    """A reader thread per segment scans and puts each expired item on a bounded
    queue; a pool of deleter threads takes them off and deletes them, all on one
    client. After a failure the deleters drain the queue without deleting, so no
    reader blocks forever; the failure is raised at the end."""

    def __init__(self, client: DynamoDBClient, job: SweepJob, calls: Counter[str]):
        self.job = job
        self.table = swept_table(client, job)
        self.rule = AgeRule(job.sweep.age_attribute, job.sweep.age_format, job.cutoff)
        self.pending: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=job.page_size)
        self.failures: list[BaseException] = []
        self.calls = calls
        self.lock = threading.Lock()

    def run(self) -> None:
        readers = [
            threading.Thread(target=self.read, args=(segment,), name=f"reader-{segment}")
            for segment in range(self.job.total_segments)
        ]
        deleters = [
            threading.Thread(target=self.delete, name=f"deleter-{n}")
            for n in range(self.job.deleters)
        ]
        for thread in readers + deleters:
            thread.start()
        for thread in readers:
            thread.join()
        for _ in deleters:
            self.pending.put(None)
        for thread in deleters:
            thread.join()
        if self.failures:
            raise self.failures[0]

    def read(self, segment: int) -> None:
        mine: Counter[str] = Counter()
        try:
            for expired in expired_pages(self.table, self.rule, self.job, segment, mine):
                for item in expired:
                    self.pending.put(item)
        except Exception as exc:
            self.failures.append(exc)
        with self.lock:
            self.calls.update(mine)

    def delete(self) -> None:
        mine: Counter[str] = Counter()
        while (item := self.pending.get()) is not None:
            if self.failures:
                continue
            try:
                delete_items(self.table, self.job, [item], mine)
            except Exception as exc:
                self.failures.append(exc)
        with self.lock:
            self.calls.update(mine)


def serve(
    connection: Connection,
    job: SweepJob,
    work: Callable[[DynamoDBClient, Counter[str]], None],
    pool: int,
) -> None:
    """Child: build the client and connect, report ready, wait for go, work, report."""
    try:
        config = BOTO_CONFIG.merge(BotoConfig(max_pool_connections=max(pool, 10)))
        client: DynamoDBClient = boto3.session.Session().client(
            "dynamodb", endpoint_url=job.endpoint_url, region_name=job.region, config=config
        )
        client.describe_table(TableName=job.table)  # as the worker looks up the key
    except Exception:
        connection.send(("error", traceback.format_exc().strip().splitlines()[-1]))
        return
    connection.send(("ready", None))
    try:
        if connection.recv() != "go":
            return
    except (EOFError, OSError):
        return
    calls: Counter[str] = Counter()
    try:
        work(client, calls)
    except Exception:
        connection.send(("error", traceback.format_exc().strip().splitlines()[-1]))
        return
    connection.send(("done", dict(calls)))
