"""The demo table's items and the truth about each one, and how they are written.

Items shaped like the original workload (WorkerId N, StartTime S, StartExecutionTime
ISO-8601 with mixed UTC offsets, Completed as 1 or "1"), about 97.5 % expired; none
closer to the cutoff than BOUNDARY_MARGIN, so the truth holds whenever the planner
fixes the cutoff (``check_boundary`` says when it no longer does).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from scavenger.errors import Unprocessed
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.tools.local.demo.observer import DemoObserver

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_AGE = timedelta(hours=48)
# Items are never seeded closer than this to the cutoff, so the truth does not
# depend on how long seeding takes before the planner fixes the cutoff.
BOUNDARY_MARGIN = timedelta(hours=1)
# Shares of the items that must survive (about 2.5 % in all, as in the original table).
FRESH_SHARE = 0.012
INCOMPLETE_SHARE = 0.010
UNPARSEABLE_SHARE = 0.003
OFFSETS = ("Z", "+00:00", "+05:30", "-08:00", "+14:00", "-12:00", "+09:00", "-03:30")
SEED_THREADS = 4
BATCH_WRITE_SIZE = 25
SEED_ATTEMPTS = 10


@dataclass(frozen=True)
class SeededItem:
    """The truth about one seeded item, kept apart from how it is written."""

    key: tuple[int, str]
    instant: datetime | None  # None: the age attribute is missing, mistyped or garbage
    completed: bool

    def expired(self, cutoff: datetime) -> bool:
        return self.completed and self.instant is not None and self.instant < cutoff


def generate_items(
    count: int, now: datetime, rng: random.Random
) -> Iterator[tuple[dict[str, Any], SeededItem]]:
    """Items like the original table's, with the truth about each one."""
    for index in range(count):
        worker_id = index // 4 + 1
        start_time = (now - timedelta(days=40) + timedelta(seconds=index)).strftime(
            "%Y-%m-%dT%H:%M:%S.%f"
        )[:-3] + "Z"
        draw = rng.random()
        completed = True
        age_text: dict[str, str] | None
        if draw < UNPARSEABLE_SHARE:
            age_text = rng.choice([{"S": "not a date"}, {"N": "1700000000"}, {"S": ""}, None])
            instant = None
        else:
            if draw < UNPARSEABLE_SHARE + FRESH_SHARE:
                age = _age(rng, fresh=True)
            else:
                age = _age(rng, fresh=False)
                if draw < UNPARSEABLE_SHARE + FRESH_SHARE + INCOMPLETE_SHARE:
                    completed = False
            instant = now - age
            age_text = {"S": iso_at_offset(instant, rng.choice(OFFSETS), rng.random() < 0.5)}
        completed_value = (
            rng.choice([{"N": "1"}, {"S": "1"}])
            if completed
            else rng.choice([{"N": "0"}, {"S": "0"}])
        )
        item: dict[str, Any] = {
            "WorkerId": {"N": str(worker_id)},
            "StartTime": {"S": start_time},
            "Completed": completed_value,
            "Host": {"S": f"worker-{worker_id % 97:02d}"},
        }
        if age_text is not None:
            item["StartExecutionTime"] = age_text
        yield item, SeededItem(key=(worker_id, start_time), instant=instant, completed=completed)


def _age(rng: random.Random, *, fresh: bool) -> timedelta:
    """An age well clear of MAX_AGE; a third of them within 15 h of it, where a
    comparison that ignored the UTC offset would get them wrong."""
    near = rng.random() < 1 / 3
    if fresh:
        high = MAX_AGE - BOUNDARY_MARGIN
        low = high - timedelta(hours=14) if near else timedelta(minutes=1)
    else:
        low = MAX_AGE + BOUNDARY_MARGIN
        high = low + timedelta(hours=14) if near else timedelta(days=30)
    return low + (high - low) * rng.random()


def iso_at_offset(instant: datetime, offset: str, millis: bool = False) -> str:
    """``instant`` as ISO-8601 at ``offset`` (one of OFFSETS; "Z" writes UTC as Z)."""
    if offset == "Z":
        zone = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = offset[1:].split(":")
        zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    text = instant.astimezone(zone).isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z") if offset == "Z" else text


def seed_table(
    dynamodb: DynamoDBClient,
    table: str,
    count: int,
    now: datetime,
    rng: random.Random,
    observer: DemoObserver,
) -> list[SeededItem]:
    """BatchWriteItem from a few threads; unprocessed items are retried."""
    items: list[dict[str, Any]] = []
    truth: list[SeededItem] = []
    for item, seeded in generate_items(count, now, rng):
        items.append(item)
        truth.append(seeded)
    batches = [items[n : n + BATCH_WRITE_SIZE] for n in range(0, len(items), BATCH_WRITE_SIZE)]
    written = 0
    lock = threading.Lock()
    observer.seeding(0, count)

    def write(batch: list[dict[str, Any]]) -> None:
        nonlocal written
        requests: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in batch]}

        def put() -> None:
            nonlocal requests
            response = dynamodb.batch_write_item(RequestItems=requests)
            requests = response.get("UnprocessedItems") or {}
            if requests:
                raise Unprocessed("seeding: BatchWriteItem kept returning unprocessed items")

        try:
            RetryPolicy(NoDeadline(), max_attempts=SEED_ATTEMPTS).call(put, "BatchWriteItem")
        except Unprocessed as exc:
            raise RuntimeError(str(exc)) from exc
        with lock:
            written += len(batch)
            observer.seeding(written, count)

    pool = ThreadPoolExecutor(SEED_THREADS, thread_name_prefix="seed")
    try:
        for future in [pool.submit(write, batch) for batch in batches]:
            future.result()
    finally:
        pool.shutdown(cancel_futures=True)  # a Ctrl-C does not wait for the rest
    return truth


def check_boundary(seeded_at: datetime, cutoff: datetime) -> None:
    """Fail when the run's cutoff is BOUNDARY_MARGIN or more from the one seeding assumed."""
    drift = abs((seeded_at - MAX_AGE) - cutoff)
    if drift >= BOUNDARY_MARGIN:
        raise RuntimeError(
            f"the cutoff moved {drift} from the seeding time: the seeded truth no longer holds"
        )
