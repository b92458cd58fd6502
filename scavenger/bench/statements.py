"""Batched conditional PartiQL DELETEs, as the worker's batch path sends them.

Each statement deletes one scanned item on condition that its key, its age and
every attribute ``where`` names are still what the scan saw (``IS MISSING`` for
one that was absent); ``RETURNING ALL OLD *`` tells a deletion from a key that
matched nothing. Up to 25 statements a BatchExecuteStatement call.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import replace
from typing import Any

from scavenger.config import Sweep
from scavenger.expiry import Expressions
from scavenger.table import SweptTable

BATCH_STATEMENTS = 25


def where_attributes(sweep: Sweep) -> tuple[str, ...]:
    """The attribute names ``where`` refers to, through its ``names`` placeholders."""
    return tuple(dict.fromkeys(sweep.names.values()))


def with_where_projection(expressions: Expressions, sweep: Sweep) -> Expressions:
    """The scan also returns the attributes ``where`` names, so each can be pinned."""
    names = dict(expressions.projection_names)
    for index, attribute in enumerate(where_attributes(sweep)):
        if attribute not in names.values():
            names[f"#sc_w{index}"] = attribute
    return replace(expressions, projection=", ".join(names), projection_names=names)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def statement(table: SweptTable, sweep: Sweep, item: dict[str, Any]) -> dict[str, Any]:
    pinned = [*table.keys, sweep.age_attribute]
    conditions = [f"{_quoted(name)} = ?" for name in pinned]
    parameters = [item[name] for name in pinned]
    for attribute in where_attributes(sweep):
        if attribute in item:
            conditions.append(f"{_quoted(attribute)} = ?")
            parameters.append(item[attribute])
        else:
            conditions.append(f"{_quoted(attribute)} IS MISSING")
    return {
        "Statement": f"DELETE FROM {_quoted(table.table)} WHERE {' AND '.join(conditions)} "
        "RETURNING ALL OLD *",
        "Parameters": parameters,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def delete_batch(
    table: SweptTable, sweep: Sweep, items: list[dict[str, Any]], calls: Counter[str]
) -> int:
    """Delete ``items`` in calls of up to 25 statements; the number deleted.

    A statement whose condition failed is a skip; any other statement error
    fails the bench run (it has no concurrent writer and no throttling to wait out).
    """
    deleted = 0
    for start in range(0, len(items), BATCH_STATEMENTS):
        statements = [
            statement(table, sweep, item) for item in items[start : start + BATCH_STATEMENTS]
        ]
        request = {"Statements": statements, "ReturnConsumedCapacity": "TOTAL"}
        response: dict[str, Any] = table.retry.call(
            functools.partial(table.client.batch_execute_statement, **request),
            "BatchExecuteStatement",
        )
        calls["BatchExecuteStatement"] += 1
        for result in response.get("Responses", []):
            error = result.get("Error")
            if error is None:
                deleted += int("Item" in result)
            elif error.get("Code") != "ConditionalCheckFailed":
                raise RuntimeError(
                    f"BatchExecuteStatement: {error.get('Code')}: {error.get('Message')}"
                )
    return deleted
