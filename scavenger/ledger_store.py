"""The ledger table's keys and calls, shared by the adapters that read and write it.

pk ``run_id``, sk ``part``: ``RUN`` for the run, ``SEG#00007`` per segment. Every call
goes through the one retry policy; ConditionFailed is an answer (False), not an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from scavenger.errors import ConditionFailed, RetryableError, Unprocessed
from scavenger.message import Key, cursor_to_json
from scavenger.records import SEGMENT_PREFIX
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.schema import LEDGER_RETENTION_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

T = TypeVar("T")

RUN_PART = "RUN"
RETENTION_SECONDS = LEDGER_RETENTION_SECONDS

NAMES = {
    "#status": "status",
    "#cursor": "cursor",
    "#hop": "hop",
    "#checkpoints": "checkpoints",
    "#updated_at": "updated_at",
    "#last_error": "last_error",
    "#requeue": "requeue",
    "#nonce": "nonce",
}


def segment_part(segment: int) -> str:
    return f"{SEGMENT_PREFIX}{segment:05d}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def number(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def string(value: str) -> dict[str, str]:
    return {"S": value}


def cursor_text(cursor: Key | None) -> str:
    """A cursor as the ledger stores it (canonical JSON, so two writes compare equal)."""
    return json.dumps(cursor_to_json(cursor), sort_keys=True, separators=(",", ":"))


def expires_at() -> dict[str, str]:
    """The TTL value of an item written now: the ledger keeps it 30 days."""
    return number(int(time.time()) + RETENTION_SECONDS)


def key(run_id: str, part: str) -> dict[str, Any]:
    return {"run_id": string(run_id), "part": string(part)}


class LedgerStore:
    """Calls on the ledger table over an injected DynamoDB client, within one retry policy."""

    def __init__(self, client: DynamoDBClient, table_name: str, retry: RetryPolicy | None = None):
        self.client = client
        self.table_name = table_name
        self.retry = retry or RetryPolicy(NoDeadline())

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        return self.retry.call(operation, f"ledger.{what}")

    def _get(self, run_id: str, part: str) -> dict[str, Any] | None:
        response = self._call(
            "GetItem",
            lambda: self.client.get_item(
                TableName=self.table_name, Key=key(run_id, part), ConsistentRead=True
            ),
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _update_key(
        self, run_id: str, part: str, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        return self._apply(self._update_request(run_id, part, update, condition, values))

    def _update_request(
        self,
        run_id: str,
        part: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        extra_names: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """An UpdateItem's arguments (or a transaction's Update), with the NAMES it uses
        and ``extra_names``."""
        names = {name: attr for name, attr in NAMES.items() if name in update or name in condition}
        return {
            "TableName": self.table_name,
            "Key": key(run_id, part),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names | (extra_names or {}),
            "ExpressionAttributeValues": values,
        }

    def _apply(self, request: dict[str, Any]) -> bool:
        """Run a conditional UpdateItem; False if its condition failed."""
        try:
            self._call("UpdateItem", lambda: self.client.update_item(**request))
        except ConditionFailed:
            return False
        return True

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """One TransactWriteItems; False if a condition failed (nothing was written)."""
        transaction = cast("list[TransactWriteItemTypeDef]", items)
        try:
            self._call(
                "TransactWriteItems",
                lambda: self.client.transact_write_items(TransactItems=transaction),
            )
        except ConditionFailed:
            return False
        return True

    def _batch_get(
        self, keys: list[dict[str, Any]], attempts: int, options: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The items of up to 100 ``keys``, read consistently (``options``: a projection);
        keys left unprocessed are read again, up to ``attempts`` calls in all."""
        found: list[dict[str, Any]] = []
        wanted: dict[str, Any] = {"Keys": keys, "ConsistentRead": True, **(options or {})}
        request: dict[str, Any] = {self.table_name: wanted}

        def read() -> None:
            response = self._call(
                "BatchGetItem", lambda: self.client.batch_get_item(RequestItems=request)
            )
            found.extend(response.get("Responses", {}).get(self.table_name, []))
            unprocessed: dict[str, Any] = dict(response.get("UnprocessedKeys") or {})
            wanted["Keys"] = unprocessed.get(self.table_name, {}).get("Keys", [])
            if wanted["Keys"]:
                raise Unprocessed(f"ledger {self.table_name}: batch get left unprocessed keys")

        self.retry.for_unprocessed(attempts).call(read, "ledger.BatchGetItem.unprocessed")
        return found

    def _pages(
        self,
        operation: Literal["Query", "Scan"],
        request: dict[str, Any],
        *,
        out_of_time: str = "",
    ) -> Iterator[dict[str, Any]]:
        """Every page of a Query or Scan, each read from the last one's LastEvaluatedKey.

        With ``out_of_time``, no further page is read once the retry budget is down to
        its floor: RetryableError(``out_of_time``) instead, so a worker never reads into
        its timeout (its redelivery reads again).
        """
        request = dict(request)

        def read() -> dict[str, Any]:
            if operation == "Query":
                return dict(self.client.query(**request))
            return dict(self.client.scan(**request))

        while True:
            page = self._call(operation, read)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            if out_of_time and self.retry.budget.remaining_seconds() <= self.retry.floor_seconds:
                raise RetryableError(out_of_time)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
