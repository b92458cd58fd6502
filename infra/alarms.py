"""Alarms on the fleet: a segment in the DLQ, a kept planner failure, a stuck queue, errors
and throttles."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.queues import SweepQueues

PERIOD = Duration.minutes(5)


class FleetAlarms(Construct):
    """Each alarm notifies ``topic_arn`` when one is given; otherwise it only changes state."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queues: SweepQueues,
        planner: lambda_.IFunction,
        worker: lambda_.IFunction,
        oldest_message_age: Duration,
        topic_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms = [
            *self._queue_alarms(queues, oldest_message_age=oldest_message_age),
            *self._worker_alarms(worker),
            *self._planner_alarms(planner, failures=queues.planner_failures),
        ]
        if topic_arn:
            topic = sns.Topic.from_topic_arn(self, "Topic", topic_arn)
            for alarm in self.alarms:
                alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))

    def _queue_alarms(
        self, queues: SweepQueues, *, oldest_message_age: Duration
    ) -> list[cloudwatch.Alarm]:
        return [
            self._alarm(
                "DeadLetterQueueNotEmpty",
                "A segment reached the DLQ: inspect it with `scavenger dlq`, then redrive it",
                _messages_waiting(queues.dead_letter_queue),
            ),
            self._alarm(
                "OldestMessageAge",
                "Segments wait in the queue too long: the fleet is stuck or its maximum "
                "concurrency is too low for the run",
                queues.queue.metric_approximate_age_of_oldest_message(
                    period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM
                ),
                threshold=oldest_message_age.to_seconds(),
            ),
        ]

    def _worker_alarms(self, worker: lambda_.IFunction) -> list[cloudwatch.Alarm]:
        return [
            self._alarm(
                "WorkerErrors",
                "Worker invocations failed (crash or timeout)",
                worker.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM),
            ),
            self._alarm(
                "WorkerThrottles",
                "Worker invocations were throttled: the account's concurrency is below the "
                "event source's maximum concurrency",
                worker.metric_throttles(period=PERIOD, statistic=cloudwatch.Stats.SUM),
            ),
        ]

    def _planner_alarms(
        self, planner: lambda_.IFunction, *, failures: sqs.IQueue
    ) -> list[cloudwatch.Alarm]:
        return [
            self._alarm(
                "PlannerFailureKept",
                "A scheduled run failed after Lambda's retries and its event was kept: find "
                "the cause in the planner's logs, fix it, then `scavenger plan --from-failed`",
                _messages_waiting(failures),
            ),
            self._alarm(
                "PlannerErrors",
                "The planner failed: a scheduled run was not planned, or only in part",
                planner.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM),
            ),
        ]

    def _alarm(
        self, name: str, description: str, metric: cloudwatch.IMetric, *, threshold: float = 0
    ) -> cloudwatch.Alarm:
        """An alarm on ``metric > threshold`` over one period; no data is not a breach."""
        return cloudwatch.Alarm(
            self,
            name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


def _messages_waiting(queue: sqs.IQueue) -> cloudwatch.Metric:
    """A queue's visible messages, the largest count a minute: one message is worth an alarm."""
    return queue.metric_approximate_number_of_messages_visible(
        period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
    )
