"""When an item is expired, and the expressions that keep deletes safe.

The cutoff is fixed once per run by the planner. An item is expired when its
age attribute parses to an instant strictly before the cutoff (and the sweep's
``where`` holds, which DynamoDB checks). Anything missing, of the wrong type or
unparseable is never deleted.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from scavenger.config import Sweep

AGE_NAME = "#sc_age"
AGE_VALUE = ":sc_age"
PINNED_NAME = "#sc_w{}"
# The tokens of a condition expression (it holds no literals: values are placeholders).
TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<index>\[\s*[0-9]+\s*\])|(?P<dot>\.)|(?P<operator><>|<=|>=|[=<>(),]))"
)
KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
T = TypeVar("T")


class Age(enum.Enum):
    EXPIRED = "expired"
    FRESH = "fresh"
    UNPARSEABLE = "unparseable"


def format_instant(instant: datetime) -> str:
    """UTC, whole seconds, ``Z`` suffix: the form cutoffs travel in."""
    return instant.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; one without an offset is taken as UTC."""
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant


@dataclass(frozen=True)
class AgeRule:
    """Classifies a scanned item (low-level DynamoDB JSON) against one run's cutoff."""

    attribute: str
    age_format: str
    cutoff: datetime

    def __post_init__(self) -> None:
        if self.cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")
        seconds = Decimal(int(self.cutoff.timestamp()))
        seconds += Decimal(self.cutoff.microsecond) / Decimal(1_000_000)
        object.__setattr__(self, "_cutoff_seconds", seconds)
        object.__setattr__(self, "_cutoff_millis", seconds * 1000)

    def classify(self, item: dict[str, Any]) -> Age:
        value = item.get(self.attribute)
        if self.age_format == "iso8601":
            return self._classify_iso(value)
        limit = self._cutoff_seconds if self.age_format == "epoch_seconds" else self._cutoff_millis  # type: ignore[attr-defined]
        return self._classify_number(value, limit)

    def _classify_iso(self, value: Any) -> Age:
        instant = _parsed(value, "S", parse_instant, ValueError)
        if instant is None:
            return Age.UNPARSEABLE
        return Age.EXPIRED if instant < self.cutoff else Age.FRESH

    @staticmethod
    def _classify_number(value: Any, limit: Decimal) -> Age:
        number = _parsed(value, "N", Decimal, InvalidOperation)
        if number is None or not number.is_finite():
            return Age.UNPARSEABLE
        return Age.EXPIRED if number < limit else Age.FRESH


def _parsed(
    value: Any, type_code: str, parse: Callable[[str], T], invalid: type[Exception]
) -> T | None:
    """``parse`` of an attribute value of type ``type_code`` (``{"S": "..."}``); None when
    the value is missing, of another type, or ``parse`` rejects it with ``invalid``."""
    if not isinstance(value, dict) or not isinstance(value.get(type_code), str):
        return None
    try:
        return parse(value[type_code])
    except invalid:
        return None


def to_attribute_value(value: str | int | float | bool) -> dict[str, Any]:
    """A config value as low-level DynamoDB JSON: bool -> BOOL, int/float -> N, str -> S."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    return {"S": value}


def where_attributes(where: str, names: dict[str, str] | Any) -> tuple[str, ...] | None:
    """The top-level attributes a condition expression reads, in order of appearance;
    None when the text is not one this reader understands (the sweep then deletes
    item by item). A condition is a function of the attributes it names: while each
    holds its scanned value (or stays missing), the condition's verdict cannot change.
    Pinning a whole top-level attribute also pins every path below it."""
    found: list[str] = []
    position, previous = 0, ""
    tokens: list[tuple[str, str]] = []
    while position < len(where):
        match = TOKEN.match(where, position)
        if match is None or match.end() == position:
            if where[position:].strip():
                return None
            break
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    for index, (kind, text) in enumerate(tokens):
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if previous != "." and kind == "name":
            if text not in names:
                return None
            found.append(names[text])
        elif (
            previous != "." and kind == "word" and text.upper() not in KEYWORDS and following != "("
        ):
            found.append(text)
        previous = text
    return tuple(dict.fromkeys(found))


def quoted(identifier: str) -> str:
    """A PartiQL quoted identifier: exact case, an embedded quote doubled."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class Expressions:
    """The scan filter/projection and the delete condition for one sweep.

    ``pinned``: the attributes besides key and age that a batch DELETE pins to their
    scanned values (those ``where`` reads); None when ``where`` could not be read,
    and the sweep deletes item by item.
    """

    projection: str
    projection_names: dict[str, str]
    filter: str | None
    filter_names: dict[str, str]
    filter_values: dict[str, Any]
    delete_condition: str
    delete_names: dict[str, str]
    user_values: dict[str, Any]
    pinned: tuple[str, ...] | None = ()
    where_reads_age: bool = False

    @classmethod
    def build(cls, sweep: Sweep, key_attributes: tuple[str, ...]) -> Expressions:
        key_names = {f"#sc_k{index}": name for index, name in enumerate(key_attributes)}
        projection_names = {**key_names, AGE_NAME: sweep.age_attribute}
        pinned: tuple[str, ...] | None = ()
        where_reads_age = False
        if sweep.where and sweep.delete_mode == "batch":
            read = where_attributes(sweep.where, sweep.names)
            pinned = None
            if read is not None:
                where_reads_age = sweep.age_attribute in read
                skip = {*key_attributes, sweep.age_attribute}
                pinned = tuple(name for name in read if name not in skip)
                # The scan returns them, so each DELETE can pin what was seen.
                for index, name in enumerate(pinned):
                    projection_names[PINNED_NAME.format(index)] = name
        user_values = {key: to_attribute_value(value) for key, value in sweep.values.items()}
        # The delete runs only if the age attribute still holds the value we saw
        # (so the item is still expired: the cutoff is fixed) and `where` still holds.
        condition = f"{AGE_NAME} = {AGE_VALUE}"
        if sweep.where:
            condition = f"{condition} AND ({sweep.where})"
        return cls(
            projection=", ".join(projection_names),
            projection_names=projection_names,
            filter=sweep.where,
            filter_names=dict(sweep.names),
            filter_values=user_values,
            delete_condition=condition,
            delete_names={AGE_NAME: sweep.age_attribute, **sweep.names},
            user_values=user_values,
            pinned=pinned,
            where_reads_age=where_reads_age,
        )


@dataclass(frozen=True)
class DeleteStatement:
    """Builds the batch path's PartiQL DELETE for one scanned item.

    ``DELETE FROM "T" WHERE "k" = ? AND "age" = ? AND "a" = ? AND "b" IS MISSING
    RETURNING ALL OLD *``: the key, the age pinned to its scanned value and every
    attribute ``where`` reads pinned to its scanned value, or to missing where it was
    absent. Identifiers are quoted, values always parameters.
    """

    table: str
    keys: tuple[str, ...]
    age_attribute: str
    pinned: tuple[str, ...]
    # When ``where`` reads the age too, a new age may no longer satisfy it: a rewrite
    # of the age then counts as a change that only ``where``'s own condition can judge.
    where_reads_age: bool = False

    def build(self, item: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        clauses = [f"{quoted(name)} = ?" for name in (*self.keys, self.age_attribute)]
        parameters = [item[name] for name in (*self.keys, self.age_attribute)]
        for name in self.pinned:
            if name in item:
                clauses.append(f"{quoted(name)} = ?")
                parameters.append(item[name])
            else:
                clauses.append(f"{quoted(name)} IS MISSING")
        where = " AND ".join(clauses)
        return f"DELETE FROM {quoted(self.table)} WHERE {where} RETURNING ALL OLD *", parameters

    def unchanged(self, scanned: dict[str, Any], current: dict[str, Any]) -> bool:
        """True when ``current`` holds every attribute ``where`` reads as ``scanned`` did."""
        read = (*self.pinned, self.age_attribute) if self.where_reads_age else self.pinned
        return all(scanned.get(name) == current.get(name) for name in read)
