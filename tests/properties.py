"""Hypothesis settings shared by the property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings


def fixture_examples(count: int, **options: Any) -> settings:
    """``count`` examples of a property that runs under function-scoped fixtures (set up
    once for all its examples) and talks to an emulator: no deadline, and no health
    check for either."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        **options,
    )
