"""The planner and worker functions: one code asset, two handlers, least-privilege roles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsii
from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.checkov import ENV_NOT_SECRET, LOGS_ENCRYPTED, NO_VPC, skip_checks
from infra.queues import SweepQueues
from infra.settings import StackSettings
from scavenger.schema import MAX_RECEIVE_COUNT

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.X86_64
PLANNER_HANDLER = "planner.handler.handler"
WORKER_HANDLER = "worker.handler.handler"
SERVICE_NAME = "scavenger"
METRICS_NAMESPACE = "Scavenger"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# Exactly what each function calls (tests/infra/test_recorded_calls.py records the calls of a
# representative run and checks them against these grants, both ways).
# The worker reads a swept table's keys, scans it, deletes on condition and, when the
# condition failed, reads the item again (a consistent GetItem) before deciding.
SWEPT_TABLE_ACTIONS = (
    "dynamodb:DescribeTable",
    "dynamodb:Scan",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
)
# A table a batch-mode sweep deletes from (delete_mode = "batch", the default): PartiQL
# DELETEs in BatchExecuteStatement. DeleteItem and GetItem stay: a statement whose `where`
# attributes changed is decided by the item path's conditional delete.
BATCH_DELETE_ACTIONS = ("dynamodb:PartiQLDelete",)
# A table swept only by dry-run sweeps is never written: a dry run can not be turned off
# per invocation (the planner's dry_run only ever adds one).
DRY_RUN_TABLE_ACTIONS = ("dynamodb:DescribeTable", "dynamodb:Scan")
PLANNER_TABLE_ACTIONS = ("dynamodb:DescribeTable",)
# Before a run starts, the planner has DynamoDB read a sweep's `where` in a one-item Scan.
PLANNER_FILTER_CHECK_ACTIONS = ("dynamodb:Scan",)
# The planner points the sweep at its new run (Get/Put), writes the run and its segments
# (Put, BatchWrite) and marks unsent segments failed (Update).
PLANNER_LEDGER_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",  # a running run's shards still pending, to send them again
)
# The worker claims its segment, reading it with its run (BatchGet, Get), checkpoints and
# halts it (Update), counts it done with its run (a transaction of two Updates), sums the
# segments of a finished run (Query) and plans a large run's shards (BatchWrite).
WORKER_LEDGER_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",  # a plan shard writes its segments' items
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
)
QUEUE_SEND_ACTIONS = ("sqs:SendMessage",)
PLANNER_ASYNC_RETRIES = 2
PLANNER_CHECKOV_SKIPS = {
    "CKV_AWS_116": "Failed asynchronous invocations go to an on-failure destination "
    "(the planner failure queue), which keeps the event with the error; a DLQ "
    "(DeadLetterConfig) would keep the event alone",
    "CKV_AWS_115": "Runs once per schedule, and a second concurrent run of a sweep "
    "is refused by the ledger (a compare-and-set). Reserved concurrency is carved "
    "out of the account's pool: the deployment fails where that would leave less "
    "than 10 unreserved (a new account has 10 in all)",
}
WORKER_CHECKOV_SKIPS = {
    "CKV_AWS_116": "Invoked synchronously by the SQS event source mapping, which "
    "never uses a function DLQ: a failing segment goes to the segment queue's DLQ "
    f"after {MAX_RECEIVE_COUNT} receives (its redrive policy)",
    "CKV_AWS_115": "Concurrency is capped by the event source mapping's maximum "
    "concurrency (max_concurrency), which, unlike reserved concurrency, neither "
    "throttles deliveries back into the queue nor takes from the account's pool",
}


def shared_environment(
    settings: StackSettings, *, queues: SweepQueues, ledger: dynamodb.ITable
) -> dict[str, str]:
    """What both functions read at cold start (scavenger.settings): sweeps and resources."""
    return {
        "SCAVENGER_SWEEPS": settings.sweeps_json,
        "SCAVENGER_QUEUE_URL": queues.queue.queue_url,
        "SCAVENGER_DLQ_URL": queues.dead_letter_queue.queue_url,
        "SCAVENGER_LEDGER_TABLE": ledger.table_name,
        "SCAVENGER_MAX_CONCURRENCY": str(settings.max_concurrency),
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    }


def worker_environment(settings: StackSettings) -> dict[str, str]:
    """The worker's own limits: its hop budget and the time it keeps to checkpoint."""
    return {
        "SCAVENGER_MAX_HOPS": str(settings.max_hops),
        # Time kept to checkpoint and continue: room for a slow call or two
        # (the clients' connect and read timeouts are 3 s and 10 s).
        "SCAVENGER_SAFETY_MARGIN_SECONDS": str(max(5, settings.worker_timeout_seconds // 10)),
    }


@jsii.implements(lambda_.IDestination)
class SendOnlyQueueDestination:
    """An SQS on-failure destination that grants the function sqs:SendMessage alone (Lambda
    sends the failed event with the function's role); CDK's SqsDestination also grants
    GetQueueAttributes and GetQueueUrl, which nothing calls."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue

    def bind(self, scope: Construct, fn: lambda_.IFunction, *_: Any, **__: Any) -> Any:
        self.queue.grant(fn, *QUEUE_SEND_ACTIONS)
        return lambda_.DestinationConfig(destination=self.queue.queue_arn)


class SweepFunctions(Construct):
    """Planner on a schedule, worker on the queue; each with its own role and log group.

    Grants: on the swept tables (imported by name), the ledger and the queue, only the actions
    each function calls; the worker also consumes the queue; the planner's failed
    asynchronous invocations go to the planner failure queue.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        settings: StackSettings,
        queues: SweepQueues,
        ledger: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = shared_environment(settings, queues=queues, ledger=ledger)
        self.planner = self._planner(code, settings, environment, failures=queues.planner_failures)
        self.worker = self._worker(code, settings, environment)
        self._grant_swept_tables(settings)
        ledger.grant(self.planner, *PLANNER_LEDGER_ACTIONS)
        ledger.grant(self.worker, *WORKER_LEDGER_ACTIONS)
        for function in (self.planner, self.worker):
            queues.queue.grant(function, *QUEUE_SEND_ACTIONS)
        self._consume(queues.queue, settings)
        self.schedule = self._schedule(settings)

    def _planner(
        self,
        code: lambda_.Code,
        settings: StackSettings,
        environment: Mapping[str, str],
        *,
        failures: sqs.IQueue,
    ) -> lambda_.Function:
        planner = self._function(
            "Planner",
            code=code,
            handler=PLANNER_HANDLER,
            description="Scavenger planner: splits each sweep into segments and enqueues them",
            timeout=Duration.seconds(settings.planner_timeout_seconds),
            memory_mb=settings.planner_memory_mb,
            environment=environment,
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        # EventBridge invokes the planner asynchronously: a run that still fails after
        # Lambda's retries is kept on the failure queue (`scavenger plan --from-failed`).
        planner.configure_async_invoke(
            retry_attempts=PLANNER_ASYNC_RETRIES, on_failure=SendOnlyQueueDestination(failures)
        )
        skip_checks(planner, PLANNER_CHECKOV_SKIPS)
        return planner

    def _worker(
        self, code: lambda_.Code, settings: StackSettings, environment: Mapping[str, str]
    ) -> lambda_.Function:
        # Continuations go back through the queue into this function; Lambda would stop that
        # loop after ~16 hops, so the worker enforces its own hop budget (SCAVENGER_MAX_HOPS).
        worker = self._function(
            "Worker",
            code=code,
            handler=WORKER_HANDLER,
            description="Scavenger worker: scans one segment and deletes what is expired",
            timeout=Duration.seconds(settings.worker_timeout_seconds),
            memory_mb=settings.worker_memory_mb,
            environment={**environment, **worker_environment(settings)},
            recursive_loop=lambda_.RecursiveLoop.ALLOW,
        )
        skip_checks(worker, WORKER_CHECKOV_SKIPS)
        return worker

    def _grant_swept_tables(self, settings: StackSettings) -> None:
        """Each swept table, imported by name, grants each function what its sweeps need."""
        deleting, filtered = settings.deleting_tables, settings.filtered_tables
        batch_deleting = settings.batch_deleting_tables
        for index, table_name in enumerate(settings.tables):
            swept = dynamodb.Table.from_table_name(self, f"SweptTable{index}", table_name)
            swept.grant(
                self.planner,
                *PLANNER_TABLE_ACTIONS,
                *(PLANNER_FILTER_CHECK_ACTIONS if table_name in filtered else ()),
            )
            swept.grant(
                self.worker,
                *(SWEPT_TABLE_ACTIONS if table_name in deleting else DRY_RUN_TABLE_ACTIONS),
                *(BATCH_DELETE_ACTIONS if table_name in batch_deleting else ()),
            )

    def _consume(self, queue: sqs.IQueue, settings: StackSettings) -> None:
        """The worker on the segment queue; a failed record alone goes back to the queue."""
        self.worker.add_event_source(
            event_sources.SqsEventSource(
                queue,
                batch_size=settings.batch_size,
                max_concurrency=settings.max_concurrency,
                report_batch_item_failures=True,
            )
        )

    def _schedule(self, settings: StackSettings) -> events.Rule:
        """The rule that starts a run of every sweep (off with context schedule_enabled)."""
        return events.Rule(
            self,
            "Schedule",
            description="Starts a Scavenger run of every configured sweep",
            schedule=events.Schedule.expression(settings.schedule),
            enabled=settings.schedule_enabled,
            targets=[targets.LambdaFunction(self.planner, retry_attempts=2)],
        )

    def _function(
        self,
        name: str,
        *,
        code: lambda_.Code,
        handler: str,
        description: str,
        timeout: Duration,
        memory_mb: int,
        environment: Mapping[str, str],
        recursive_loop: lambda_.RecursiveLoop,
    ) -> lambda_.Function:
        # An explicit role and log group keep the AWS managed execution policy (logs on `*`) out.
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Scavenger {name.lower()} function",
        )
        log_group = logs.LogGroup(self, f"{name}Logs", retention=LOG_RETENTION)
        log_group.grant_write(role)
        skip_checks(log_group, {"CKV_AWS_158": LOGS_ENCRYPTED})
        function = lambda_.Function(
            self,
            name,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code,
            handler=handler,
            description=description,
            role=role,
            log_group=log_group,
            timeout=timeout,
            memory_size=memory_mb,
            environment=dict(environment),
            recursive_loop=recursive_loop,
        )
        skip_checks(function, {"CKV_AWS_117": NO_VPC, "CKV_AWS_173": ENV_NOT_SECRET})
        return function
