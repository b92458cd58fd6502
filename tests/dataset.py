"""Seeded test tables whose expected outcome is known by construction."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

KEY_SHAPES: dict[str, tuple[list[dict[str, str]], list[dict[str, str]]]] = {
    "hash_string": (
        [{"AttributeName": "id", "KeyType": "HASH"}],
        [{"AttributeName": "id", "AttributeType": "S"}],
    ),
    "composite_number_string": (
        [
            {"AttributeName": "WorkerId", "KeyType": "HASH"},
            {"AttributeName": "StartTime", "KeyType": "RANGE"},
        ],
        [
            {"AttributeName": "WorkerId", "AttributeType": "N"},
            {"AttributeName": "StartTime", "AttributeType": "S"},
        ],
    ),
    "hash_binary": (
        [{"AttributeName": "bid", "KeyType": "HASH"}],
        [{"AttributeName": "bid", "AttributeType": "B"}],
    ),
}


# The seed-style `where`: Completed = 1 as a number or as a string; 0s and absent kept.
COMPLETED_VALUES = [{"N": "1"}, {"S": "1"}, {"N": "1"}, {"N": "0"}, {"S": "0"}, None]


def make_key(shape: str, index: int) -> dict[str, Any]:
    if shape == "hash_string":
        return {"id": {"S": f"item-{index:06d}"}}
    if shape == "composite_number_string":
        return {"WorkerId": {"N": str(index % 37)}, "StartTime": {"S": f"t{index:06d}"}}
    return {"bid": {"B": index.to_bytes(4, "big") + b"\x00\xff"}}


def key_id(key: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((name, next(iter(value.values()))) for name, value in key.items()))


def create_table(dynamodb: Any, name: str, shape: str) -> None:
    schema, attributes = KEY_SHAPES[shape]
    dynamodb.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
    )


def create_hash_table(dynamodb: Any, name: str, key: str = "id", key_type: str = "S") -> None:
    """An on-demand table keyed by one hash attribute of ``key_type``."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": key_type}],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class Truth:
    """What a correct sweep must do to a seeded table."""

    keys: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    doomed: set[tuple[Any, ...]] = field(default_factory=set)  # expired and `where` holds
    unparseable: int = 0  # `where` holds but the age is missing/garbage
    total: int = 0

    @property
    def kept(self) -> set[tuple[Any, ...]]:
        return set(self.keys) - self.doomed


def render_age(instant: datetime, age_format: str, rng: random.Random) -> dict[str, str]:
    if age_format == "epoch_seconds":
        return {"N": str(int(instant.timestamp()))}
    if age_format == "epoch_millis":
        return {"N": str(int(instant.timestamp() * 1000))}
    offset = timezone(timedelta(minutes=rng.choice([0, 0, 60, -300, 330, 840, -720])))
    text = instant.astimezone(offset).isoformat(timespec=rng.choice(["seconds", "milliseconds"]))
    return {"S": text.replace("+00:00", "Z") if rng.random() < 0.5 else text}


def seed_table(
    dynamodb: Any,
    table: str,
    shape: str,
    *,
    count: int,
    cutoff: datetime,
    age_format: str = "iso8601",
    with_where: bool = True,
    rng: random.Random | None = None,
) -> Truth:
    """Items around ``cutoff`` (never within a minute of it), some with garbage ages and,
    with ``with_where``, a ``Completed`` attribute that the sweep's where clause tests."""
    rng = rng or random.Random(42)
    truth = Truth(total=count)
    requests = []
    for index in range(count):
        key = make_key(shape, index)
        item = dict(key)
        roll = rng.random()
        garbage = roll < 0.08
        if garbage:
            choice = rng.choice(["missing", "text", "wrong-type"])
            if choice == "text":
                item["ts"] = {"S": "not a date"}
            elif choice == "wrong-type":
                item["ts"] = {"N": "12"} if age_format == "iso8601" else {"S": "12"}
        expired = roll >= 0.08 and rng.random() < 0.7
        if not garbage:
            minutes = rng.randint(1, 60 * 24 * 30)
            instant = (
                cutoff - timedelta(minutes=minutes)
                if expired
                else cutoff + timedelta(minutes=minutes)
            )
            item["ts"] = render_age(instant, age_format, rng)
        matches = True
        if with_where:
            completed = rng.choice(COMPLETED_VALUES)
            if completed is not None:
                item["Completed"] = completed
            matches = completed in ({"N": "1"}, {"S": "1"})
        truth.keys[key_id(key)] = key
        if matches and expired:
            truth.doomed.add(key_id(key))
        if matches and garbage:
            truth.unparseable += 1
        requests.append({"PutRequest": {"Item": item}})
        if len(requests) == 25:
            dynamodb.batch_write_item(RequestItems={table: requests})
            requests = []
    if requests:
        dynamodb.batch_write_item(RequestItems={table: requests})
    return truth


def remaining_keys(dynamodb: Any, table: str) -> set[tuple[Any, ...]]:
    keys: set[tuple[Any, ...]] = set()
    kwargs: dict[str, Any] = {"TableName": table}
    schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    names = [key["AttributeName"] for key in schema]
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page["Items"]:
            keys.add(key_id({name: item[name] for name in names}))
        if "LastEvaluatedKey" not in page:
            return keys
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def now() -> datetime:
    return datetime.now(UTC)
