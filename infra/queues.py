"""The segment queue and its dead-letter queue, both FIFO; the planner's failure queue."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.checkov import SQS_MANAGED_SSE, skip_checks
from scavenger.schema import DLQ_RETENTION_DAYS, MAX_RECEIVE_COUNT

# Lambda's guidance for SQS event sources: visibility timeout at least six times the timeout.
VISIBILITY_TIMEOUT_FACTOR = 6
DLQ_RETENTION = Duration.days(DLQ_RETENTION_DAYS)
QUEUE_RETENTION = Duration.days(4)


class SweepQueues(Construct):
    """One message per segment; a segment that fails ``MAX_RECEIVE_COUNT`` times parks in the DLQ.

    Both queues are encrypted with SQS-managed keys and refuse requests not made over TLS. The
    main queue runs FIFO high-throughput mode (deduplication and throughput per message group),
    since every segment is its own group.

    ``planner_failures`` keeps the planner's asynchronous invocations (the schedule's) that
    failed after Lambda's retries, with their event, for ``scavenger plan --from-failed``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, worker_timeout: Duration) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            fifo=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        # Standard, not FIFO: a Lambda on-failure destination must be a standard queue.
        self.planner_failures = sqs.Queue(
            self,
            "PlannerFailures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        cdk.Validations.of(self.planner_failures).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-SQS3",
                reason="This queue is itself a dead-letter store (the planner's on-failure "
                "destination): nothing consumes it but `scavenger plan --from-failed`, which "
                "deletes a message only after its replay succeeded",
            )
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            fifo=True,
            content_based_deduplication=False,
            deduplication_scope=sqs.DeduplicationScope.MESSAGE_GROUP,
            fifo_throughput_limit=sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=QUEUE_RETENTION,
            visibility_timeout=Duration.seconds(
                worker_timeout.to_seconds() * VISIBILITY_TIMEOUT_FACTOR
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )
        for queue in (self.queue, self.dead_letter_queue, self.planner_failures):
            skip_checks(queue, {"CKV_AWS_27": SQS_MANAGED_SSE})
