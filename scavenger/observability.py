"""The one structured logger, and EMF metrics per processed segment message.

Nothing here reads the environment at import time: the service name, the metrics
namespace and the Powertools Logger (which reads its level and service from the
environment) are resolved on first use, once per process (a Lambda cold start).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

if TYPE_CHECKING:
    from scavenger.records import Counts

DEFAULT_SERVICE = "scavenger"
DEFAULT_NAMESPACE = "Scavenger"

# Log lines go to the stdout the process had when this module was imported (the one
# the Logger used when it was built at import), whenever the Logger is built.
_STREAM = sys.stdout


@functools.cache
def service_name() -> str:
    return os.environ.get("POWERTOOLS_SERVICE_NAME", DEFAULT_SERVICE)


@functools.cache
def metrics_namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)


@functools.cache
def _logger() -> Logger:
    return Logger(service=service_name(), stream=_STREAM)


class _FirstUseLogger:
    """Stands for the Powertools Logger, and builds it when first used."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_logger(), name)


logger = cast(Logger, _FirstUseLogger())


def emit_counts(sweep: str, counts: Counts) -> None:
    """One EMF line with this message's counters, the sweep as the dimension."""
    metrics = EphemeralMetrics(namespace=metrics_namespace(), service=service_name())
    metrics.add_dimension(name="sweep", value=sweep)
    for name, value in counts.as_dict().items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()
