"""Sweep configuration: parsed once, from TOML or JSON, into frozen models.

Every rejection names the field and the reason, so a bad config fails at start
with nothing enqueued or deleted.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from scavenger.errors import ConfigError
from scavenger.expression import ExpressionSyntaxError, check_condition

AgeFormat = Literal["iso8601", "epoch_seconds", "epoch_millis"]
AGE_FORMATS: tuple[AgeFormat, ...] = ("iso8601", "epoch_seconds", "epoch_millis")
ExpressionValue = str | int | float | bool

MAX_SEGMENTS = 1_000_000
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
TABLE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
DURATION_PATTERN = re.compile(r"^([0-9]+)([smhd])$")
PLACEHOLDER_PATTERN = re.compile(r"[#:][A-Za-z0-9_]+")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A cutoff a century back is far enough; longer ones only overflow dates.
MAX_AGE_SECONDS = 36_500 * 86_400
# DynamoDB's limits: 4 KB per expression; numbers of 38 digits in 1E-130 .. 9.99...E+125.
MAX_EXPRESSION_LENGTH = 4096
NUMBER_DIGITS = 38
NUMBER_EXPONENTS = (-130, 125)  # of the leading digit
MAX_SHOWN = 60
MAX_DELETES_PER_SECOND = 1_000_000
MAX_WRITE_UNITS_PER_SECOND = 10_000_000
DeleteMode = Literal["batch", "item"]
DELETE_MODES: tuple[DeleteMode, ...] = ("batch", "item")
# Placeholders Scavenger adds to the user's expression; user keys may not use the prefix.
RESERVED_PREFIX = "sc_"

SWEEP_KEYS = frozenset(
    {
        "name",
        "table",
        "age_attribute",
        "age_format",
        "max_age",
        "where",
        "names",
        "values",
        "segments",
        "dry_run",
        "deletes_per_second",
        "max_write_units_per_second",
        "delete_mode",
    }
)
REQUIRED_KEYS = ("name", "table", "age_attribute", "age_format", "max_age")
RESOURCE_KEYS = frozenset({"queue_url", "dlq_url", "ledger_table"})


@dataclass(frozen=True)
class Sweep:
    """One table to sweep and what makes its items stale."""

    name: str
    table: str
    age_attribute: str
    age_format: AgeFormat
    max_age: timedelta
    where: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, ExpressionValue] = field(default_factory=dict)
    segments: int | Literal["auto"] = "auto"
    dry_run: bool = False
    deletes_per_second: float = 0.0
    # Fleet-wide write capacity units per second; None: the planner's default (half the
    # table's capacity, scavenger.budget); 0: no fleet budget.
    max_write_units_per_second: float | None = None
    # batch: up to 25 pinned PartiQL DELETEs a call; item: one conditional DeleteItem a call
    # (tables where PartiQL is not allowed, and emulators without a faithful PartiQL).
    delete_mode: DeleteMode = "batch"

    def to_json(self) -> dict[str, Any]:
        """The sweep as the JSON object that ``SCAVENGER_SWEEPS`` holds."""
        data: dict[str, Any] = {
            "name": self.name,
            "table": self.table,
            "age_attribute": self.age_attribute,
            "age_format": self.age_format,
            "max_age": format_duration(self.max_age),
            "segments": self.segments,
            "dry_run": self.dry_run,
            "deletes_per_second": self.deletes_per_second,
            "delete_mode": self.delete_mode,
        }
        if self.max_write_units_per_second is not None:
            data["max_write_units_per_second"] = self.max_write_units_per_second
        if self.where is not None:
            data |= {"where": self.where, "names": dict(self.names), "values": dict(self.values)}
        return data


@dataclass(frozen=True)
class Config:
    """The whole configuration file: the sweeps plus optional resource locations."""

    sweeps: tuple[Sweep, ...]
    resources: Mapping[str, str] = field(default_factory=dict)

    def sweep(self, name: str) -> Sweep:
        for sweep in self.sweeps:
            if sweep.name == name:
                return sweep
        known = ", ".join(s.name for s in self.sweeps) or "none"
        raise ConfigError(f"sweep {shown(name)} is not configured (configured: {known})")


def parse_duration(text: object, field_name: str = "max_age") -> timedelta:
    """Parse ``<int><s|m|h|d>`` (``"48h"``) into a positive timedelta."""
    if not isinstance(text, str):
        raise ConfigError(f'{field_name}: must be a string like "48h", got {shown(text)}')
    match = DURATION_PATTERN.fullmatch(text.strip())
    if not match:
        raise ConfigError(
            f'{field_name}: {shown(text)} is not <int><s|m|h|d> (for example "48h" or "30d")'
        )
    amount = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if amount <= 0:
        raise ConfigError(f"{field_name}: {shown(text)} must be greater than zero")
    if amount > MAX_AGE_SECONDS:
        raise ConfigError(f"{field_name}: {shown(text)} is longer than 36500d (a century)")
    return timedelta(seconds=amount)


def shown(value: object) -> str:
    """A value as an error message quotes it: its repr, clipped so one line stays short."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for str()
        text = "a very long number"
    return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 3]}..."


def key_name(key: object) -> str:
    """A key as an error message names it: bare when short and printable, else quoted."""
    if isinstance(key, str) and len(key) <= MAX_SHOWN and key.isprintable():
        return key
    return shown(key)


def _keys(raw: Mapping[Any, Any]) -> list[str]:
    """A table's keys for messages; TOML and JSON keys are strings, a Python dict's may not be."""
    return sorted(key_name(key) for key in raw)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds // UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def parse_sweeps(raw: object) -> tuple[Sweep, ...]:
    """Validate a list of sweep mappings (from TOML or JSON) into Sweep models."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("sweeps: must be a non-empty list of sweep tables")
    sweeps = tuple(_parse_sweep(item, index) for index, item in enumerate(raw))
    seen: set[str] = set()
    for sweep in sweeps:
        if sweep.name in seen:
            raise ConfigError(f"sweeps: name {sweep.name!r} is used twice; names must be unique")
        seen.add(sweep.name)
    return sweeps


def parse_config(raw: Mapping[str, Any]) -> Config:
    if not isinstance(raw, Mapping):
        raise ConfigError("config: must be a table with sweeps (and optionally resources)")
    unknown = _keys({key: None for key in raw if key not in ("sweeps", "resources")})
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown top-level key (expected sweeps, resources)")
    resources = raw.get("resources", {})
    if not isinstance(resources, dict):
        raise ConfigError("resources: must be a table")
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            raise ConfigError(
                f"resources.{key_name(key)}: unknown key (expected {sorted(RESOURCE_KEYS)})"
            )
        if not isinstance(value, str) or not value:
            raise ConfigError(f"resources.{key}: must be a non-empty string")
    return Config(sweeps=parse_sweeps(raw.get("sweeps")), resources=dict(resources))


def load_config(path: str | Path) -> Config:
    """Read ``scavenger.toml``; a missing or malformed file is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: {path} is not UTF-8 text ({exc.reason})") from None
    except ValueError as exc:  # a path with a NUL byte
        raise ConfigError(f"config: {shown(str(path))} is not a usable path ({exc})") from None
    try:
        raw = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an int too long to convert
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config: {path} is nested too deeply") from None
    return parse_config(raw)


def load_sweeps_json(text: str) -> tuple[Sweep, ...]:
    """Parse the ``SCAVENGER_SWEEPS`` environment variable (a JSON list of sweeps)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an int too long to convert
        raise ConfigError(f"SCAVENGER_SWEEPS: not valid JSON: {exc}") from None
    except RecursionError:
        raise ConfigError("SCAVENGER_SWEEPS: JSON nested too deeply") from None
    if isinstance(raw, dict) and "sweeps" in raw:
        raw = raw["sweeps"]
    return parse_sweeps(raw)


def sweeps_to_json(sweeps: tuple[Sweep, ...]) -> str:
    return json.dumps([sweep.to_json() for sweep in sweeps], separators=(",", ":"))


def _parse_sweep(raw: object, index: int) -> Sweep:
    where = f"sweeps[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table of settings")
    if isinstance(raw.get("name"), str):
        where = f"sweep {shown(raw['name'])}"
    unknown = _keys({key: None for key in raw if key not in SWEEP_KEYS})
    if unknown:
        raise ConfigError(f"{where}: {unknown[0]}: unknown key (allowed: {sorted(SWEEP_KEYS)})")
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise ConfigError(f"{where}: {key}: is required")
    try:
        return _build_sweep(raw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _build_sweep(raw: dict[str, Any]) -> Sweep:
    name = raw["name"]
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"name: {shown(name)} must match ^[a-z0-9][a-z0-9-]{{0,39}}$ "
            "(lower case letters, digits, dashes; at most 40)"
        )
    table = raw["table"]
    if not isinstance(table, str) or not TABLE_PATTERN.fullmatch(table):
        raise ConfigError(f"table: {shown(table)} is not a valid DynamoDB table name")
    age_attribute = raw["age_attribute"]
    if not isinstance(age_attribute, str) or not age_attribute:
        raise ConfigError("age_attribute: must be a non-empty string")
    age_format = raw["age_format"]
    if age_format not in AGE_FORMATS:
        raise ConfigError(f"age_format: {shown(age_format)} is not one of {', '.join(AGE_FORMATS)}")
    max_age = parse_duration(raw["max_age"])
    condition, names, values = _parse_where(raw)
    return Sweep(
        name=name,
        table=table,
        age_attribute=age_attribute,
        age_format=age_format,
        max_age=max_age,
        where=condition,
        names=names,
        values=values,
        segments=_parse_segments(raw.get("segments", "auto")),
        dry_run=_parse_bool(raw.get("dry_run", False), "dry_run"),
        deletes_per_second=_parse_rate(raw.get("deletes_per_second", 0)),
        max_write_units_per_second=_parse_write_budget(raw.get("max_write_units_per_second")),
        delete_mode=_parse_delete_mode(raw.get("delete_mode", "batch")),
    )


def _parse_where(
    raw: dict[str, Any],
) -> tuple[str | None, dict[str, str], dict[str, ExpressionValue]]:
    condition = raw.get("where")
    names = raw.get("names", {})
    values = raw.get("values", {})
    if not isinstance(names, dict):
        raise ConfigError("names: must be a table of #placeholder = attribute name")
    if not isinstance(values, dict):
        raise ConfigError("values: must be a table of :placeholder = value")
    if condition is None:
        if names or values:
            raise ConfigError("names/values: given without a where expression")
        return None, {}, {}
    if not isinstance(condition, str) or not condition.strip():
        raise ConfigError("where: must be a non-empty condition expression")
    if len(condition) > MAX_EXPRESSION_LENGTH:
        raise ConfigError(f"where: longer than DynamoDB's {MAX_EXPRESSION_LENGTH} characters")
    for key, value in names.items():
        if not isinstance(key, str) or not re.fullmatch(r"#[A-Za-z0-9_]+", key):
            raise ConfigError(f"names: {shown(key)} must look like #name")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"names.{key}: must be a non-empty attribute name")
    for key, value in values.items():
        if not isinstance(key, str) or not re.fullmatch(r":[A-Za-z0-9_]+", key):
            raise ConfigError(f"values: {shown(key)} must look like :value")
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"values.{key}: {shown(value)} must be a number, string or boolean")
        if isinstance(value, int | float) and not isinstance(value, bool):
            _check_number(value, f"values.{key}")
    for key in (*names, *values):
        if key[1:].startswith(RESERVED_PREFIX):
            raise ConfigError(f"{key}: placeholders starting with {RESERVED_PREFIX!r} are reserved")
    used = set(PLACEHOLDER_PATTERN.findall(condition))
    for placeholder in sorted(used):
        known = names if placeholder.startswith("#") else values
        if placeholder not in known:
            kind = "names" if placeholder.startswith("#") else "values"
            raise ConfigError(f"where: placeholder {placeholder} has no entry in {kind}")
    for key in (*names, *values):
        if key not in used:
            raise ConfigError(f"{key}: defined but not used in where")
    try:  # the syntax, locally; the planner has DynamoDB read it before a run starts
        check_condition(condition)
    except ExpressionSyntaxError as exc:
        raise ConfigError(f"where: not a condition expression: {exc}") from None
    return condition.strip(), dict(names), dict(values)


def _check_number(value: int | float, field_name: str) -> None:
    """A number DynamoDB can store: finite, 38 significant digits, magnitude in range."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{field_name}: {shown(value)} is not a finite number")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except ValueError:  # an int too long for str()
        number = Decimal("Infinity")
    significant = "".join(map(str, number.as_tuple().digits)).strip("0") if number else ""
    if (
        not number.is_finite()
        or len(significant) > NUMBER_DIGITS
        or (number and not NUMBER_EXPONENTS[0] <= number.adjusted() <= NUMBER_EXPONENTS[1])
    ):
        raise ConfigError(
            f"{field_name}: {shown(value)} is not a DynamoDB number "
            f"(at most {NUMBER_DIGITS} digits, magnitude 1E-130 to 9.99E+125)"
        )


def _parse_segments(value: object) -> int | Literal["auto"]:
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f'segments: {shown(value)} must be "auto" or an integer 1..{MAX_SEGMENTS}'
        )
    if not 1 <= value <= MAX_SEGMENTS:
        raise ConfigError(f"segments: {value} is out of range 1..{MAX_SEGMENTS}")
    return value


def _parse_bool(value: object, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{field_name}: {shown(value)} must be true or false")
    return value


def _parse_rate(value: object) -> float:
    return _parse_limit(value, "deletes_per_second", MAX_DELETES_PER_SECOND, meaning="0 = no limit")


def _parse_write_budget(value: object) -> float | None:
    if value is None:
        return None
    return _parse_limit(
        value,
        "max_write_units_per_second",
        MAX_WRITE_UNITS_PER_SECOND,
        meaning="write units per second for the whole run; 0 = no fleet budget; "
        "absent = half the table's write capacity",
    )


def _parse_limit(value: object, field_name: str, maximum: int, *, meaning: str) -> float:
    """A rate limit: a number from 0 to ``maximum``; ``meaning`` tells the message what it means."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= maximum  # NaN fails this too
    ):
        raise ConfigError(
            f"{field_name}: {shown(value)} must be a number >= 0 and at most {maximum} ({meaning})"
        )
    return float(value)


def _parse_delete_mode(value: object) -> DeleteMode:
    for mode in DELETE_MODES:
        if value == mode and isinstance(value, str):
            return mode
    raise ConfigError(f"delete_mode: {shown(value)} is not one of {', '.join(DELETE_MODES)}")
