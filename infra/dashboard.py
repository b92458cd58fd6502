"""One CloudWatch dashboard per deployment: what each sweep does, the queues, the worker."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.functions import METRICS_NAMESPACE, SERVICE_NAME
from infra.queues import SweepQueues

PERIOD = Duration.minutes(1)
AVERAGE, MAXIMUM, SUM = cloudwatch.Stats.AVERAGE, cloudwatch.Stats.MAXIMUM, cloudwatch.Stats.SUM
WIDTH = 8  # three widgets a row (the grid is 24 wide)
HEIGHT = 6


def sweep_metric(sweep: str, name: str, label: str) -> cloudwatch.Metric:
    """A counter the worker emits as EMF once per segment message (scavenger.observability):
    namespace ``Scavenger``, dimensions ``sweep`` and ``service``, summed per period."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"sweep": sweep, "service": SERVICE_NAME},
        statistic=SUM,
        period=PERIOD,
        label=label,
    )


class FleetDashboard(Construct):
    """Per sweep: deletes and skipped items, throttles, consumed write (and read) units.
    The queues: depth, oldest message age, DLQ depth. The worker: duration, errors,
    throttles and concurrent executions. Its name is the stack's name plus ``-scavenger``,
    so each deployment (stack) has its own."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        sweeps: Sequence[str],
        queues: SweepQueues,
        worker: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{Stack.of(self).stack_name}-scavenger",
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown="# Scavenger\nPer sweep: what the workers deleted and what it cost. "
                "`scavenger status --watch` shows one run live.",
                width=24,
                height=2,
            )
        )
        for sweep in sweeps:
            self.dashboard.add_widgets(*self._sweep_row(sweep))
        self.dashboard.add_widgets(*self._queue_row(queues))
        self.dashboard.add_widgets(*self._worker_row(worker))

    @property
    def dashboard_name(self) -> str:
        return self.dashboard.dashboard_name

    @staticmethod
    def _sweep_row(sweep: str) -> list[cloudwatch.IWidget]:
        return [
            _graph(
                f"{sweep}: deleted and skipped",
                sweep_metric(sweep, "deleted", "deleted"),
                sweep_metric(sweep, "skipped", "skipped (changed or gone)"),
                sweep_metric(sweep, "unparseable", "unparseable"),
            ),
            _graph(f"{sweep}: throttled requests", sweep_metric(sweep, "throttled", "throttled")),
            _graph(
                f"{sweep}: consumed capacity units",
                sweep_metric(sweep, "write_units", "write units"),
                sweep_metric(sweep, "read_units", "read units"),
            ),
        ]

    @staticmethod
    def _queue_row(queues: SweepQueues) -> list[cloudwatch.IWidget]:
        queue, dlq = queues.queue, queues.dead_letter_queue
        return [
            _graph(
                "queue depth (segments waiting and in flight)",
                _per_minute(
                    queue.metric_approximate_number_of_messages_visible, MAXIMUM, "waiting"
                ),
                _per_minute(
                    queue.metric_approximate_number_of_messages_not_visible, MAXIMUM, "in flight"
                ),
            ),
            _graph(
                "oldest segment message age (s)",
                _per_minute(queue.metric_approximate_age_of_oldest_message, MAXIMUM, "oldest"),
            ),
            _graph(
                "DLQ depth (`scavenger dlq`, `scavenger redrive`)",
                _per_minute(
                    dlq.metric_approximate_number_of_messages_visible, MAXIMUM, "in the DLQ"
                ),
            ),
        ]

    @staticmethod
    def _worker_row(worker: lambda_.Function) -> list[cloudwatch.IWidget]:
        return [
            _graph(
                "worker duration (ms)",
                _per_minute(worker.metric_duration, AVERAGE, "average"),
                _per_minute(worker.metric_duration, MAXIMUM, "maximum"),
            ),
            _graph(
                "worker errors and throttles",
                _per_minute(worker.metric_errors, SUM, "errors"),
                _per_minute(worker.metric_throttles, SUM, "throttles"),
            ),
            _graph(
                "worker concurrent executions",
                worker.metric(
                    "ConcurrentExecutions", period=PERIOD, statistic=MAXIMUM, label="concurrent"
                ),
            ),
        ]


def _per_minute(
    metric: Callable[..., cloudwatch.Metric], statistic: str, label: str
) -> cloudwatch.Metric:
    """One of a construct's metric methods (``queue.metric_...``), a point a minute."""
    return metric(period=PERIOD, statistic=statistic, label=label)


def _graph(title: str, *metrics: cloudwatch.IMetric) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=list(metrics), width=WIDTH, height=HEIGHT)
