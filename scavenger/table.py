"""The swept table: one parallel-scan page at a time, and safe conditional deletes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scavenger.errors import ConditionFailed
from scavenger.expiry import AGE_VALUE, Expressions
from scavenger.message import Key
from scavenger.retry import RetryPolicy


@dataclass
class Meter:
    """What the data-plane calls of one message cost: retries and capacity units."""

    retries: int = 0
    read_units: float = 0.0
    write_units: float = 0.0

    def count_retry(self) -> None:
        self.retries += 1

    def snapshot(self) -> Meter:
        return Meter(self.retries, self.read_units, self.write_units)

    def since(self, earlier: Meter) -> Meter:
        return Meter(
            self.retries - earlier.retries,
            self.read_units - earlier.read_units,
            self.write_units - earlier.write_units,
        )


def _capacity(response: dict[str, Any]) -> float:
    return float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    scanned: int
    last_key: Key | None


def key_attributes(client: Any, table: str, retry: RetryPolicy) -> tuple[str, ...]:
    """The table's key attribute names, hash first."""
    description = retry.call(lambda: client.describe_table(TableName=table), "DescribeTable")
    schema = description["Table"]["KeySchema"]
    ordered = sorted(schema, key=lambda key: key["KeyType"] != "HASH")
    return tuple(key["AttributeName"] for key in ordered)


class SweptTable:
    """Scan and delete on one table for one sweep, through an injected client."""

    def __init__(
        self,
        client: Any,
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
            last_key=response.get("LastEvaluatedKey"),
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
                    ReturnConsumedCapacity="TOTAL",
                ),
                "DeleteItem",
            )
        except ConditionFailed:
            return False
        self.meter.write_units += _capacity(response)
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
