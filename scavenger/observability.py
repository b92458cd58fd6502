"""The one structured logger, the function's metrics, and EMF counters per segment message.

Nothing here reads the environment at import time: the service name, the metrics
namespace, the Powertools Logger and Metrics (which read their settings from the
environment) and their handler decorators are resolved on first use, once per
process (a Lambda cold start).
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

if TYPE_CHECKING:
    from scavenger.records import Counts

DEFAULT_SERVICE = "scavenger"
DEFAULT_NAMESPACE = "Scavenger"

# Log lines go to the stdout the process had when this module was imported (the one
# the Logger used when it was built at import), whenever the Logger is built.
_STREAM = sys.stdout

Handler = TypeVar("Handler", bound=Callable[[Any, Any], Any])

# The handlers' metrics hold only the cold start (the counters are written per message,
# below), so most invocations flush none: Powertools' documented way to say that is fine.
EMPTY_METRICS_WARNING = "No application metrics to publish"
warnings.filterwarnings("ignore", f"{EMPTY_METRICS_WARNING}*")


@functools.cache
def service_name() -> str:
    return os.environ.get("POWERTOOLS_SERVICE_NAME", DEFAULT_SERVICE)


@functools.cache
def metrics_namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)


@functools.cache
def _logger() -> Logger:
    return Logger(service=service_name(), stream=_STREAM)


@functools.cache
def _metrics() -> Metrics:
    return Metrics(namespace=metrics_namespace(), service=service_name())


def _at_first_call(handler: Handler, decorate: Callable[[Handler], Handler]) -> Handler:
    """``handler`` under a Powertools decorator that is applied when the handler is first
    invoked (the decorators read the environment)."""
    decorated: list[Handler] = []

    @functools.wraps(handler)
    def invoke(event: Any, context: Any) -> Any:
        if not decorated:
            decorated.append(decorate(handler))
        return decorated[0](event, context)

    return cast(Handler, invoke)


class _FirstUseLogger:
    """Stands for the Powertools Logger, and builds it when first used."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_logger(), name)

    def inject_lambda_context(self, handler: Handler) -> Handler:
        """Powertools' ``Logger.inject_lambda_context``: the function's name, request id and
        cold start on every log line of the invocation."""
        return _at_first_call(handler, lambda plain: _logger().inject_lambda_context(plain))


class _FirstUseMetrics:
    """Stands for the function's Powertools Metrics, and builds them when first used."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_metrics(), name)

    def log_metrics(self, handler: Handler | None = None, **options: Any) -> Any:
        """Powertools' ``Metrics.log_metrics``: what the invocation added is flushed as EMF
        when it ends, raise or return (``capture_cold_start_metric=True`` adds ColdStart).
        Called with options only, it returns the decorator."""
        if handler is None:
            return functools.partial(self.log_metrics, **options)
        return _at_first_call(
            handler, lambda plain: cast(Handler, _metrics().log_metrics(plain, **options))
        )


logger = cast(Logger, _FirstUseLogger())
metrics = cast(Metrics, _FirstUseMetrics())


def emit_counts(sweep: str, counts: Counts) -> None:
    """One EMF line with this message's counters, the sweep as the dimension. Its own line
    and its own metric set: a batch may mix sweeps (an EMF line has one dimension set), and
    the local harness runs the worker's batch logic on several threads at once."""
    line = EphemeralMetrics(namespace=metrics_namespace(), service=service_name())
    line.add_dimension(name="sweep", value=sweep)
    for name, value in counts.as_dict().items():
        line.add_metric(name=name, unit=MetricUnit.Count, value=value)
    line.flush_metrics()
