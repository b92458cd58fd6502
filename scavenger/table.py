"""The swept table: one parallel-scan page at a time, and safe conditional deletes."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from scavenger.errors import ConditionFailed, FatalError, RetryableError, statement_outcome
from scavenger.expiry import AGE_NAME, AGE_VALUE, DeleteStatement, Expressions
from scavenger.message import Key
from scavenger.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import BatchStatementRequestTypeDef


@dataclass
class Meter:
    """What the data-plane calls of one message cost: retries and capacity units.

    ``write_units`` is the whole (table and indexes); ``write_units_by_index`` the
    part each secondary index took, where the engine reports it.
    """

    retries: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    write_units_by_index: dict[str, float] = field(default_factory=dict)

    def count_retry(self) -> None:
        self.retries += 1

    def snapshot(self) -> Meter:
        return Meter(
            self.retries, self.read_units, self.write_units, dict(self.write_units_by_index)
        )

    def since(self, earlier: Meter) -> Meter:
        by_index = {
            index: units - earlier.write_units_by_index.get(index, 0.0)
            for index, units in self.write_units_by_index.items()
        }
        return Meter(
            self.retries - earlier.retries,
            self.read_units - earlier.read_units,
            self.write_units - earlier.write_units,
            {index: units for index, units in by_index.items() if units},
        )

    def count_writes(self, consumed: WriteUnits | None, deleted: int) -> None:
        """Add what a delete call consumed; where the engine reported nothing
        (BatchExecuteStatement on DynamoDB Local), one unit per deleted item, the least
        a delete costs, with no index part."""
        if consumed is None:
            self.write_units += deleted
            return
        self.write_units += consumed.total
        for index, units in consumed.by_index.items():
            self.write_units_by_index[index] = self.write_units_by_index.get(index, 0.0) + units


@dataclass(frozen=True)
class WriteUnits:
    """The write units one call consumed: the whole and each secondary index's part."""

    total: float
    by_index: dict[str, float]


def write_units(response: Mapping[str, Any]) -> WriteUnits | None:
    """Parse ``ConsumedCapacity`` asked with INDEXES: one entry (DeleteItem) or a list
    of them (BatchExecuteStatement). None when the response carries none."""
    consumed = response.get("ConsumedCapacity")
    if not consumed:
        return None
    total, by_index = 0.0, dict[str, float]()
    for entry in consumed if isinstance(consumed, list) else [consumed]:
        indexes: dict[str, float] = {}
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            for index, capacity in entry.get(kind, {}).items():
                indexes[index] = float(capacity.get("CapacityUnits", 0.0))
        table = float(entry.get("Table", {}).get("CapacityUnits", 0.0))
        total += float(entry.get("CapacityUnits", table + sum(indexes.values())))
        for index, units in indexes.items():
            by_index[index] = by_index.get(index, 0.0) + units
    return WriteUnits(total, by_index)


def _capacity(response: Mapping[str, Any]) -> float:
    return float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))


class Deleted(enum.Enum):
    """What one statement of a batch did."""

    DELETED = "deleted"  # the old item came back: this statement deleted it
    GONE = "gone"  # no item and no error: it was already gone
    CHANGED = "changed"  # a pin failed; the item as it is now comes with it


# What the batch path hands back per item: (scanned item, verdict, current item or None).
OnDeleted = Callable[[dict[str, Any], Deleted, dict[str, Any] | None], None]
MAX_STATEMENTS = 25  # DynamoDB's limit for one BatchExecuteStatement


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    scanned: int
    last_key: Key | None


def key_attributes(client: DynamoDBClient, table: str, retry: RetryPolicy) -> tuple[str, ...]:
    """The table's key attribute names, hash first."""
    description = retry.call(lambda: client.describe_table(TableName=table), "DescribeTable")
    schema = description["Table"]["KeySchema"]
    ordered = sorted(schema, key=lambda key: key["KeyType"] != "HASH")
    return tuple(key["AttributeName"] for key in ordered)


class SweptTable:
    """Scan and delete on one table for one sweep, through an injected client."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        keys: tuple[str, ...],
        expressions: Expressions,
        retry: RetryPolicy,
        meter: Meter | None = None,
    ):
        self.client = client
        self.table = table
        self.keys = keys
        self.expressions = expressions
        self.retry = retry
        self.meter = meter or Meter()
        self.statement = DeleteStatement(
            table,
            keys,
            expressions.delete_names[AGE_NAME],
            expressions.pinned or (),
            expressions.where_reads_age,
        )
        self._scan_base: dict[str, Any] = {
            "TableName": table,
            "ReturnConsumedCapacity": "TOTAL",
            "ProjectionExpression": expressions.projection,
            "ExpressionAttributeNames": dict(expressions.projection_names),
        }
        if expressions.filter:
            self._scan_base["FilterExpression"] = expressions.filter
            self._scan_base["ExpressionAttributeNames"].update(expressions.filter_names)
            if expressions.filter_values:
                self._scan_base["ExpressionAttributeValues"] = expressions.filter_values

    def scan_page(self, segment: int, total_segments: int, cursor: Key | None, limit: int) -> Page:
        request = dict(self._scan_base, Segment=segment, TotalSegments=total_segments, Limit=limit)
        if cursor is not None:
            request["ExclusiveStartKey"] = cursor
        response = self.retry.call(lambda: self.client.scan(**request), "Scan")
        self.meter.read_units += _capacity(response)
        return Page(
            items=response.get("Items", []),
            scanned=int(response.get("ScannedCount", 0)),
            last_key=cast("Key | None", response.get("LastEvaluatedKey")),
        )

    def delete_if_unchanged(self, item: dict[str, Any], age_value: dict[str, Any]) -> bool:
        """Delete ``item`` only if its age is still ``age_value`` and ``where`` still holds.

        Returns False when the condition failed (the item changed or is gone).
        """
        key = {name: item[name] for name in self.keys}
        values = {AGE_VALUE: age_value, **self.expressions.user_values}
        try:
            response = self.retry.call(
                lambda: self.client.delete_item(
                    TableName=self.table,
                    Key=key,
                    ConditionExpression=self.expressions.delete_condition,
                    ExpressionAttributeNames=self.expressions.delete_names,
                    ExpressionAttributeValues=values,
                    ReturnConsumedCapacity="INDEXES",
                ),
                "DeleteItem",
            )
        except ConditionFailed:
            return False
        self.meter.count_writes(write_units(response), 1)
        return True

    def current(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """``item``'s key and age as they are now (a consistent read), or None if it is gone."""
        key = {name: item[name] for name in self.keys}
        response = self.retry.call(
            lambda: self.client.get_item(
                TableName=self.table,
                Key=key,
                ConsistentRead=True,
                ProjectionExpression=self.expressions.projection,
                ExpressionAttributeNames=self.expressions.projection_names,
                ReturnConsumedCapacity="TOTAL",
            ),
            "GetItem",
        )
        self.meter.read_units += _capacity(response)
        found: dict[str, Any] | None = response.get("Item")
        return found

    def delete_batch(self, items: list[dict[str, Any]], on_deleted: OnDeleted) -> None:
        """Delete up to 25 scanned items in one BatchExecuteStatement, each statement
        pinned to what was scanned (see DeleteStatement); ``on_deleted`` hears each
        verdict once, as it arrives. Throttled or failed statements are sent again on
        their own, never the whole batch, within the retry budget; when it runs out,
        RetryableError is raised and the verdicts already given stand."""
        if len(items) > MAX_STATEMENTS:
            raise ValueError(f"at most {MAX_STATEMENTS} statements a batch, got {len(items)}")
        pending = list(items)

        def attempt() -> None:
            nonlocal pending
            statements: list[BatchStatementRequestTypeDef] = []
            for item in pending:
                text, parameters = self.statement.build(item)
                statements.append(
                    {
                        "Statement": text,
                        "Parameters": parameters,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                )
            response = self.client.batch_execute_statement(
                Statements=statements, ReturnConsumedCapacity="INDEXES"
            )
            again: list[dict[str, Any]] = []
            errors: list[str] = []
            deleted = 0
            for item, answer in zip(pending, response.get("Responses", []), strict=True):
                error = answer.get("Error")
                if error is None:
                    found = "Item" in answer
                    deleted += found
                    on_deleted(item, Deleted.DELETED if found else Deleted.GONE, None)
                    continue
                code = str(error.get("Code", ""))
                outcome = statement_outcome(code)
                if outcome is ConditionFailed:
                    on_deleted(item, Deleted.CHANGED, error.get("Item"))
                elif outcome is RetryableError:
                    again.append(item)
                    errors.append(code)
                else:
                    raise FatalError(f"{code}: {error.get('Message', '')}")
            self.meter.count_writes(write_units(response), deleted)
            pending = again
            if again:
                raise RetryableError(f"{len(again)} of {len(statements)} statements: {errors[0]}")

        self.retry.call(attempt, "BatchExecuteStatement")
