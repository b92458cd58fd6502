"""The one structured logger, and EMF metrics per processed segment message."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

if TYPE_CHECKING:
    from scavenger.records import Counts

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "scavenger")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Scavenger")

logger = Logger(service=SERVICE)


def emit_counts(sweep: str, counts: Counts) -> None:
    """One EMF line with this message's counters, the sweep as the dimension."""
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    metrics.add_dimension(name="sweep", value=sweep)
    for name, value in counts.as_dict().items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()
