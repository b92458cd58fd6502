"""The planner and worker functions: one code asset, two handlers, least-privilege roles."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.queues import SweepQueues
from infra.settings import StackSettings

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.X86_64
PLANNER_HANDLER = "planner.handler.handler"
WORKER_HANDLER = "worker.handler.handler"
SERVICE_NAME = "scavenger"
METRICS_NAMESPACE = "Scavenger"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# PartiQLDelete: the batch path's BatchExecuteStatement of DELETE statements.
SWEPT_TABLE_ACTIONS = (
    "dynamodb:Scan",
    "dynamodb:DeleteItem",
    "dynamodb:PartiQLDelete",
    "dynamodb:DescribeTable",
)


class SweepFunctions(Construct):
    """Planner on a schedule, worker on the queue; each with its own role and log group.

    Grants: the swept tables (imported by name) only for what each function calls on them,
    read/write on the ledger, send on the queue; the worker also consumes the queue.
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
        environment = {
            "SCAVENGER_SWEEPS": settings.sweeps_json,
            "SCAVENGER_QUEUE_URL": queues.queue.queue_url,
            "SCAVENGER_DLQ_URL": queues.dead_letter_queue.queue_url,
            "SCAVENGER_LEDGER_TABLE": ledger.table_name,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        self.planner = self._function(
            "Planner",
            code=code,
            handler=PLANNER_HANDLER,
            description="Scavenger planner: splits each sweep into segments and enqueues them",
            timeout=Duration.seconds(settings.planner_timeout_seconds),
            memory_mb=settings.planner_memory_mb,
            environment=environment,
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        # Continuations go back through the queue into this function; Lambda would stop that
        # loop after ~16 hops, so the worker enforces its own hop budget (SCAVENGER_MAX_HOPS).
        self.worker = self._function(
            "Worker",
            code=code,
            handler=WORKER_HANDLER,
            description="Scavenger worker: scans one segment and deletes what is expired",
            timeout=Duration.seconds(settings.worker_timeout_seconds),
            memory_mb=settings.worker_memory_mb,
            environment={
                **environment,
                "SCAVENGER_MAX_HOPS": str(settings.max_hops),
                # Time kept to checkpoint and continue: room for a slow call or two
                # (the clients' connect and read timeouts are 3 s and 10 s).
                "SCAVENGER_SAFETY_MARGIN_SECONDS": str(
                    max(5, settings.worker_timeout_seconds // 10)
                ),
            },
            recursive_loop=lambda_.RecursiveLoop.ALLOW,
        )

        for index, table_name in enumerate(settings.tables):
            swept = dynamodb.Table.from_table_name(self, f"SweptTable{index}", table_name)
            swept.grant(self.planner, "dynamodb:DescribeTable")
            swept.grant(self.worker, *SWEPT_TABLE_ACTIONS)
        for function in (self.planner, self.worker):
            ledger.grant_read_write_data(function)
            queues.queue.grant_send_messages(function)

        self.worker.add_event_source(
            event_sources.SqsEventSource(
                queues.queue,
                batch_size=settings.batch_size,
                max_concurrency=settings.max_concurrency,
                report_batch_item_failures=True,
            )
        )
        self.schedule = events.Rule(
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
        return lambda_.Function(
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
