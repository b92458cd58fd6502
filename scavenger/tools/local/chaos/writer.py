"""The concurrent writer: refreshes expired items and inserts new ones during the sweep,
recording what it changed and when (the check's truth about them)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from scavenger.tools.local.chaos.books import FaultJournal, Key
from scavenger.tools.local.chaos.plan import ChaosPlan, sub_seed
from scavenger.tools.local.demo import OFFSETS, SeededItem, iso_at_offset

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

INSERTED_WORKER_IDS = 10_000_000  # keys of inserted items start here, clear of the seeded ones


@dataclass(frozen=True)
class WriterChange:
    """One write of the concurrent writer: what, to which key, when (seconds after start)."""

    action: str  # refresh | refresh_too_late | insert_fresh | insert_expired
    key: Key
    at: float
    age: str


class ConcurrentWriter(threading.Thread):
    """Refreshes random expired items and inserts new ones while the sweep runs.

    A refresh is a conditional update (the item must still exist): when the run
    has already deleted the item, nothing is written and the attempt is recorded
    as ``refresh_too_late``, so the writer never resurrects an item.
    """

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        expired: list[SeededItem],
        plan: ChaosPlan,
        cutoff: datetime,
        journal: FaultJournal,
        spread_seconds: float,
    ):
        super().__init__(name="chaos-writer", daemon=True)
        self.dynamodb = dynamodb
        self.table = table
        self.cutoff = cutoff
        self.journal = journal
        self.random = random.Random(sub_seed(plan.seed, "writer"))
        refreshes = max(1, round(len(expired) * plan.refresh_share)) if expired else 0
        targets = self.random.sample(expired, min(refreshes, len(expired)))
        self.operations: list[tuple[str, SeededItem | None]] = [
            ("refresh", item) for item in targets
        ]
        self.operations += [("insert_fresh", None)] * plan.inserts_fresh
        self.operations += [("insert_expired", None)] * plan.inserts_expired
        self.random.shuffle(self.operations)
        self.pause = spread_seconds / max(1, len(self.operations))
        self.changes: list[WriterChange] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._began = time.monotonic()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        self._began = time.monotonic()
        try:
            for number, (action, item) in enumerate(self.operations):
                if self._halt.wait(self.random.uniform(0, 2 * self.pause)):
                    return
                if item is not None:
                    self._refresh(item)
                else:
                    self._insert(action, number)
        except BaseException as exc:
            self.error = exc

    def _age(self, fresh: bool) -> str:
        now = datetime.now(UTC)
        if fresh:
            instant = now - timedelta(seconds=self.random.uniform(60, 24 * 3600))
        else:
            instant = self.cutoff - timedelta(seconds=self.random.uniform(3600, 10 * 86400))
        offset = self.random.choice(OFFSETS)
        return iso_at_offset(instant, offset, millis=offset == "Z")

    def _refresh(self, item: SeededItem) -> None:
        age = self._age(fresh=True)
        key = {"WorkerId": {"N": str(item.key[0])}, "StartTime": {"S": item.key[1]}}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET StartExecutionTime = :age",
                ConditionExpression="attribute_exists(WorkerId)",
                ExpressionAttributeValues={":age": {"S": age}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self._note("refresh_too_late", item.key, age)
            return
        self._note("refresh", item.key, age)

    def _insert(self, action: str, number: int) -> None:
        age = self._age(fresh=action == "insert_fresh")
        key: Key = (INSERTED_WORKER_IDS + number, datetime.now(UTC).isoformat())
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "WorkerId": {"N": str(key[0])},
                "StartTime": {"S": key[1]},
                "StartExecutionTime": {"S": age},
                "Completed": {"N": "1"},
                "Host": {"S": "chaos-writer"},
            },
            ConditionExpression="attribute_not_exists(WorkerId)",
        )
        self._note(action, key, age)

    def _note(self, action: str, key: Key, age: str) -> None:
        self.changes.append(
            WriterChange(action, key, round(time.monotonic() - self._began, 3), age)
        )
        self.journal.record(f"writer.{action}", key=list(key))

    def keys(self, action: str) -> set[Key]:
        return {change.key for change in self.changes if change.action == action}
