"""Where a deployment reports: its dashboard, and an EventBridge event when a run closes.

Context ``event_bus_name`` names the bus the worker publishes to (default: the account's
``default`` bus); the worker may put events on that bus only. Context ``notify_topic_arn``
adds a rule that sends this deployment's run events to that SNS topic (email, chat through
AWS Chatbot, ...); the topic's own policy must let ``events.amazonaws.com`` publish.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from constructs import Construct, Node

from infra.dashboard import FleetDashboard
from infra.functions import SweepFunctions
from infra.queues import SweepQueues
from infra.settings import StackSettings
from scavenger.errors import ConfigError
from scavenger.events import DETAIL_TYPES, EVENT_SOURCE

DEFAULT_BUS = "default"
BUS_NAME = re.compile(
    r"[/.\-_A-Za-z0-9]{1,256}|arn:aws[-a-z]*:events:[-a-z0-9]+:\d{12}:event-bus/.+"
)
TOPIC_ARN = re.compile(r"arn:aws[-a-z]*:sns:[-a-z0-9]+:\d{12}:[-_A-Za-z0-9.]{1,256}")


class RunReports(Construct):
    """The dashboard, the worker's PutEvents grant and bus setting, the optional SNS route,
    and the outputs ``DashboardName`` and ``EventBusName`` (the CLI shows the first)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        queues: SweepQueues,
        functions: SweepFunctions,
        ledger: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        bus_name = event_bus_name(self.node)
        topic_arn = notify_topic_arn(self.node)
        self.dashboard = FleetDashboard(
            self,
            "Dashboard",
            sweeps=[sweep.name for sweep in settings.sweeps],
            queues=queues,
            worker=functions.worker,
        )
        bus = self._bus(bus_name)
        bus.grant_put_events_to(functions.worker)
        functions.worker.add_environment("SCAVENGER_EVENT_BUS", bus.event_bus_name)
        if topic_arn is not None:
            self._notify_rule(bus, topic_arn=topic_arn, ledger=ledger)
        self._outputs(bus)

    def _bus(self, bus_name: str) -> events.IEventBus:
        if bus_name.startswith("arn:"):
            return events.EventBus.from_event_bus_arn(self, "Bus", bus_name)
        return events.EventBus.from_event_bus_name(self, "Bus", bus_name)

    def _notify_rule(
        self, bus: events.IEventBus, *, topic_arn: str, ledger: dynamodb.ITable
    ) -> None:
        """This deployment's run events, sent to the topic."""
        # The L1 rule: the L2 one warns that it cannot tell, in an environment-agnostic
        # stack, whether the imported topic is in another account (it only sends there).
        events.CfnRule(
            self,
            "NotifyRule",
            description="Scavenger run finished or halted: to the notification topic",
            event_bus_name=bus.event_bus_name,
            event_pattern={
                "source": [EVENT_SOURCE],
                "detail-type": sorted(DETAIL_TYPES.values()),
                # Only this deployment's runs: each has its own ledger table.
                "detail": {"ledger_table": [ledger.table_name]},
            },
            targets=[events.CfnRule.TargetProperty(arn=topic_arn, id="NotifyTopic")],
        )

    def _outputs(self, bus: events.IEventBus) -> None:
        outputs = (
            (
                "DashboardName",
                self.dashboard.dashboard_name,
                "CloudWatch dashboard of this deployment",
            ),
            (
                "EventBusName",
                bus.event_bus_name,
                "Bus of the 'Scavenger Run Finished' / 'Scavenger Run Halted' events",
            ),
        )
        for output_id, value, description in outputs:
            output = cdk.CfnOutput(self, output_id, value=value, description=description)
            output.override_logical_id(output_id)


def event_bus_name(node: Node) -> str:
    """Context ``event_bus_name``: a bus name or ARN; the account's default bus if absent."""
    bus_name = str(node.try_get_context("event_bus_name") or DEFAULT_BUS)
    if not BUS_NAME.fullmatch(bus_name):
        raise ConfigError(f"event_bus_name: {bus_name!r} is not an event bus name or ARN")
    return bus_name


def notify_topic_arn(node: Node) -> str | None:
    """Context ``notify_topic_arn``: an SNS topic ARN, or None for no notifications."""
    topic_arn = node.try_get_context("notify_topic_arn")
    if topic_arn is None:
        return None
    if not TOPIC_ARN.fullmatch(str(topic_arn)):
        raise ConfigError(f"notify_topic_arn: {topic_arn!r} is not an SNS topic ARN")
    return str(topic_arn)
