"""What the stack is built from: the sweeps and the fleet's limits, read once from CDK context.

Context values given with ``-c key=value`` arrive as strings and those from ``cdk.json`` as
JSON values; both are accepted. Every rejection is a ConfigError naming the context key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from constructs import Node

from scavenger.config import Sweep, load_config, parse_sweeps, sweeps_to_json
from scavenger.errors import ConfigError
from scavenger.settings import DEFAULT_MAX_HOPS

DEFAULT_CONFIG = "scavenger.toml"
DEFAULT_SCHEDULE = "cron(0 2 * * ? *)"
# Lambda holds at most 4 KB of environment; the rest is left for the other variables.
MAX_SWEEPS_JSON_BYTES = 3072
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class StackSettings:
    """Props of the Scavenger stack; defaults suit a first deployment."""

    sweeps: tuple[Sweep, ...]
    schedule: str = DEFAULT_SCHEDULE
    schedule_enabled: bool = True
    worker_timeout_seconds: int = 300
    worker_memory_mb: int = 512
    planner_timeout_seconds: int = 300
    planner_memory_mb: int = 512
    max_concurrency: int = 50
    # One segment message per invocation, as DESIGN.md has it: a batch of FIFO records
    # shares one deadline, so larger batches only slice each segment's time thinner.
    batch_size: int = 1
    max_hops: int = DEFAULT_MAX_HOPS
    alarm_topic_arn: str | None = None
    oldest_message_alarm_seconds: int = 3600

    def __post_init__(self) -> None:
        if not self.sweeps:
            raise ConfigError("sweeps: at least one sweep is required")
        if not self.schedule.startswith(("cron(", "rate(")) or not self.schedule.endswith(")"):
            raise ConfigError(
                f"schedule: {self.schedule!r} is not an EventBridge expression "
                '(for example "cron(0 2 * * ? *)" or "rate(1 day)")'
            )
        _check_range("worker_timeout_seconds", self.worker_timeout_seconds, 30, 900)
        _check_range("planner_timeout_seconds", self.planner_timeout_seconds, 30, 900)
        _check_range("worker_memory_mb", self.worker_memory_mb, 128, 10240)
        _check_range("planner_memory_mb", self.planner_memory_mb, 128, 10240)
        # SQS event sources accept a maximum concurrency of 2..1000; FIFO batches hold 1..10.
        _check_range("max_concurrency", self.max_concurrency, 2, 1000)
        _check_range("batch_size", self.batch_size, 1, 10)
        _check_range("max_hops", self.max_hops, 1, 1_000_000)
        _check_range("oldest_message_alarm_seconds", self.oldest_message_alarm_seconds, 60, 1209600)
        if self.alarm_topic_arn is not None and not self.alarm_topic_arn.startswith("arn:"):
            raise ConfigError(f"alarm_topic_arn: {self.alarm_topic_arn!r} is not an SNS topic ARN")
        size = len(self.sweeps_json.encode())
        if size > MAX_SWEEPS_JSON_BYTES:
            raise ConfigError(
                f"sweeps: {size} bytes of JSON do not fit in the Lambda environment "
                f"(at most {MAX_SWEEPS_JSON_BYTES}); deploy fewer sweeps per stack"
            )

    @property
    def sweeps_json(self) -> str:
        """The value of ``SCAVENGER_SWEEPS``."""
        return sweeps_to_json(self.sweeps)

    @property
    def tables(self) -> tuple[str, ...]:
        """The swept table names, each once, in configuration order."""
        return tuple(dict.fromkeys(sweep.table for sweep in self.sweeps))

    @property
    def deleting_tables(self) -> frozenset[str]:
        """The tables some sweep deletes from (not every sweep of theirs is a dry run)."""
        return frozenset(sweep.table for sweep in self.sweeps if not sweep.dry_run)

    @property
    def batch_deleting_tables(self) -> frozenset[str]:
        """The tables some sweep deletes from in batch mode (PartiQL DELETE statements)."""
        return frozenset(
            sweep.table
            for sweep in self.sweeps
            if not sweep.dry_run and sweep.delete_mode == "batch"
        )

    @property
    def filtered_tables(self) -> frozenset[str]:
        """The tables some sweep filters with a ``where`` (the planner checks it by a Scan)."""
        return frozenset(sweep.table for sweep in self.sweeps if sweep.where is not None)

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        """Build settings from context keys named like the fields, plus ``sweeps``/``config``."""
        topic = node.try_get_context("alarm_topic_arn")
        return cls(
            sweeps=_sweeps(node),
            schedule=str(node.try_get_context("schedule") or cls.schedule),
            schedule_enabled=_bool(node, "schedule_enabled", cls.schedule_enabled),
            worker_timeout_seconds=_int(node, "worker_timeout_seconds", cls.worker_timeout_seconds),
            worker_memory_mb=_int(node, "worker_memory_mb", cls.worker_memory_mb),
            planner_timeout_seconds=_int(
                node, "planner_timeout_seconds", cls.planner_timeout_seconds
            ),
            planner_memory_mb=_int(node, "planner_memory_mb", cls.planner_memory_mb),
            max_concurrency=_int(node, "max_concurrency", cls.max_concurrency),
            batch_size=_int(node, "batch_size", cls.batch_size),
            max_hops=_int(node, "max_hops", cls.max_hops),
            alarm_topic_arn=str(topic) if topic else None,
            oldest_message_alarm_seconds=_int(
                node, "oldest_message_alarm_seconds", cls.oldest_message_alarm_seconds
            ),
        )


def _sweeps(node: Node) -> tuple[Sweep, ...]:
    raw = node.try_get_context("sweeps")
    config = node.try_get_context("config")
    if raw is not None and config is not None:
        raise ConfigError("sweeps: give either context sweeps or context config, not both")
    if raw is not None:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"sweeps: context value is not valid JSON: {exc}") from None
        if isinstance(raw, dict) and "sweeps" in raw:
            raw = raw["sweeps"]
        return parse_sweeps(raw)
    if config is None and not Path(DEFAULT_CONFIG).exists():
        raise ConfigError(
            "sweeps: none configured; pass -c config=path/to/scavenger.toml "
            'or -c sweeps=\'[{"name": ..., "table": ...}]\''
        )
    return load_config(str(config or DEFAULT_CONFIG)).sweeps


def _int(node: Node, key: str, default: int) -> int:
    value = node.try_get_context(key)
    if value is None:
        return default
    if isinstance(value, bool):
        raise ConfigError(f"{key}: must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: must be an integer, got {value!r}") from None


def _bool(node: Node, key: str, default: bool) -> bool:
    value = node.try_get_context(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{key}: must be true or false, got {value!r}")


def _check_range(key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{key}: {value} must be between {low} and {high}")


def context_flag(node: Node, key: str) -> bool:
    """A boolean context switch that is off unless set."""
    return _bool(node, key, False)
