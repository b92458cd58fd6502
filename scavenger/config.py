"""Sweep configuration: parsed once, from TOML or JSON, into frozen models.

Every rejection names the field and the reason, so a bad config fails at start
with nothing enqueued or deleted.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from scavenger.errors import ConfigError

AgeFormat = Literal["iso8601", "epoch_seconds", "epoch_millis"]
AGE_FORMATS: tuple[AgeFormat, ...] = ("iso8601", "epoch_seconds", "epoch_millis")
ExpressionValue = str | int | float | bool

MAX_SEGMENTS = 1_000_000
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
TABLE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
DURATION_PATTERN = re.compile(r"^([0-9]+)([smhd])$")
PLACEHOLDER_PATTERN = re.compile(r"[#:][A-Za-z0-9_]+")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
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
        }
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
        raise ConfigError(f"sweep {name!r} is not configured (configured: {known})")


def parse_duration(text: object, field_name: str = "max_age") -> timedelta:
    """Parse ``<int><s|m|h|d>`` (``"48h"``) into a positive timedelta."""
    if not isinstance(text, str):
        raise ConfigError(f'{field_name}: must be a string like "48h", got {text!r}')
    match = DURATION_PATTERN.match(text.strip())
    if not match:
        raise ConfigError(
            f'{field_name}: {text!r} is not <int><s|m|h|d> (for example "48h" or "30d")'
        )
    amount = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if amount <= 0:
        raise ConfigError(f"{field_name}: {text!r} must be greater than zero")
    return timedelta(seconds=amount)


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
    unknown = sorted(set(raw) - {"sweeps", "resources"})
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown top-level key (expected sweeps, resources)")
    resources = raw.get("resources", {})
    if not isinstance(resources, dict):
        raise ConfigError("resources: must be a table")
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            raise ConfigError(f"resources.{key}: unknown key (expected {sorted(RESOURCE_KEYS)})")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"resources.{key}: must be a non-empty string")
    return Config(sweeps=parse_sweeps(raw.get("sweeps")), resources=dict(resources))


def load_config(path: str | Path) -> Config:
    """Read ``scavenger.toml``; a missing or malformed file is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: {path} does not exist (pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None
    return parse_config(raw)


def load_sweeps_json(text: str) -> tuple[Sweep, ...]:
    """Parse the ``SCAVENGER_SWEEPS`` environment variable (a JSON list of sweeps)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"SCAVENGER_SWEEPS: not valid JSON: {exc}") from None
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
        where = f"sweep {raw['name']!r}"
    unknown = sorted(set(raw) - SWEEP_KEYS)
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
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(
            f"name: {name!r} must match ^[a-z0-9][a-z0-9-]{{0,39}}$ "
            "(lower case letters, digits, dashes; at most 40)"
        )
    table = raw["table"]
    if not isinstance(table, str) or not TABLE_PATTERN.match(table):
        raise ConfigError(f"table: {table!r} is not a valid DynamoDB table name")
    age_attribute = raw["age_attribute"]
    if not isinstance(age_attribute, str) or not age_attribute:
        raise ConfigError("age_attribute: must be a non-empty string")
    age_format = raw["age_format"]
    if age_format not in AGE_FORMATS:
        raise ConfigError(f"age_format: {age_format!r} is not one of {', '.join(AGE_FORMATS)}")
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
    for key, value in names.items():
        if not re.fullmatch(r"#[A-Za-z0-9_]+", key):
            raise ConfigError(f"names: {key!r} must look like #name")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"names.{key}: must be a non-empty attribute name")
    for key, value in values.items():
        if not re.fullmatch(r":[A-Za-z0-9_]+", key):
            raise ConfigError(f"values: {key!r} must look like :value")
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"values.{key}: {value!r} must be a number, string or boolean")
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
    return condition.strip(), dict(names), dict(values)


def _parse_segments(value: object) -> int | Literal["auto"]:
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f'segments: {value!r} must be "auto" or an integer 1..{MAX_SEGMENTS}')
    if not 1 <= value <= MAX_SEGMENTS:
        raise ConfigError(f"segments: {value} is out of range 1..{MAX_SEGMENTS}")
    return value


def _parse_bool(value: object, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{field_name}: {value!r} must be true or false")
    return value


def _parse_rate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"deletes_per_second: {value!r} must be a number >= 0 (0 = no limit)")
    return float(value)
