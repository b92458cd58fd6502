"""Where the queue, DLQ and ledger are: read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from scavenger.errors import ConfigError

DEFAULT_MAX_HOPS = 1000
DEFAULT_PAGE_SIZE = 500
DEFAULT_SAFETY_MARGIN_SECONDS = 1.5

_Number = TypeVar("_Number", int, float)


@dataclass(frozen=True)
class Settings:
    queue_url: str
    ledger_table: str
    dlq_url: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    max_hops: int = DEFAULT_MAX_HOPS
    page_size: int = DEFAULT_PAGE_SIZE
    # Time kept in reserve for the last checkpoint and the continuation message.
    safety_margin_seconds: float = DEFAULT_SAFETY_MARGIN_SECONDS
    # The EventBridge bus of the run reports (scavenger.events); unset: no report.
    event_bus: str | None = None
    # The worker's maximum concurrency (the planner shares the write budget among it).
    max_concurrency: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``SCAVENGER_*`` variables; missing ones name themselves."""
        env = os.environ if env is None else env
        missing = [
            name for name in ("SCAVENGER_QUEUE_URL", "SCAVENGER_LEDGER_TABLE") if not env.get(name)
        ]
        if missing:
            raise ConfigError(f"{missing[0]}: environment variable is not set")
        return cls(
            queue_url=env["SCAVENGER_QUEUE_URL"],
            ledger_table=env["SCAVENGER_LEDGER_TABLE"],
            dlq_url=env.get("SCAVENGER_DLQ_URL") or None,
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            max_hops=_positive_int(env, "SCAVENGER_MAX_HOPS", DEFAULT_MAX_HOPS),
            page_size=_positive_int(env, "SCAVENGER_PAGE_SIZE", DEFAULT_PAGE_SIZE),
            safety_margin_seconds=safety_margin(env),
            event_bus=env.get("SCAVENGER_EVENT_BUS") or None,
            max_concurrency=max_concurrency(env),
        )


def safety_margin(env: Mapping[str, str] | None = None) -> float:
    """``SCAVENGER_SAFETY_MARGIN_SECONDS``, or the default."""
    env = os.environ if env is None else env
    return _positive_float(env, "SCAVENGER_SAFETY_MARGIN_SECONDS", DEFAULT_SAFETY_MARGIN_SECONDS)


def max_concurrency(env: Mapping[str, str] | None = None) -> int | None:
    """``SCAVENGER_MAX_CONCURRENCY``: how many workers may run at once; None if unset."""
    env = os.environ if env is None else env
    return _positive_int(env, "SCAVENGER_MAX_CONCURRENCY", 0) or None


# How each kind of number reads in the errors: what it is not, and what it must be.
_WORDING: dict[type, tuple[str, str]] = {
    int: ("an integer", "at least 1"),
    float: ("a number", "greater than zero"),
}


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    return _positive(env, name, default, int)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    return _positive(env, name, default, float)


def _positive(env: Mapping[str, str], name: str, default: _Number, kind: type[_Number]) -> _Number:
    """``name`` from ``env`` read as ``kind`` and above zero; ``default`` when unset or empty."""
    raw = env.get(name)
    if not raw:
        return default
    not_a, must_be = _WORDING[kind]
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not {not_a}") from None
    if not value > 0:
        raise ConfigError(f"{name}: {value} must be {must_be}")
    return value
