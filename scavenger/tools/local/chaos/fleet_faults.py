"""The fleet's side of chaos (its FleetHooks): containers with their faults, duplicate
deliveries, out-of-order replays, and throttles on the fleet's own SQS calls."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from scavenger.tools.local.chaos.books import FaultJournal
from scavenger.tools.local.chaos.faults import ContainerChaos
from scavenger.tools.local.chaos.hosts import (
    ContainerSetting,
    InProcessContainer,
    new_client,
    process_container,
    raise_kill,
)
from scavenger.tools.local.chaos.plan import ChaosPlan, sub_seed
from scavenger.tools.local.chaos.responses import error_response
from scavenger.tools.local.demo import DemoResources
from scavenger.tools.local.emulator import Endpoints
from scavenger.tools.local.function import FunctionHost, FunctionSpec

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

POLLER_OPERATIONS = frozenset(
    {"ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"}
)


@dataclass(eq=False)
class ChaosFleetHooks:
    """The fleet's side: containers with their faults, duplicates and out-of-order replays."""

    plan: ChaosPlan
    journal: FaultJournal
    _: KW_ONLY
    sqs: SQSClient
    target: DemoResources
    workers: int
    in_process: Endpoints | None
    _started: int = field(init=False, default=0)
    _replays: int = field(init=False, default=0)
    _history: dict[str, list[tuple[int, str]]] = field(init=False, default_factory=dict)
    _duplicated: set[str] = field(init=False, default_factory=set)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.random = random.Random(sub_seed(self.plan.seed, "fleet"))

    def start_container(self, spec: FunctionSpec) -> FunctionHost:
        with self._lock:
            ordinal = self._started
            self._started += 1
        # Every death (a kill or an overrun) starts a new container: past the first
        # containers of each slot, only ``max_kills`` more may be killed.
        may_kill = ordinal < self.workers + self.plan.max_kills
        if self.in_process is not None:
            chaos = ContainerChaos(
                self.plan,
                ordinal,
                self.journal,
                table=self.target.table,
                ledger_table=self.target.ledger_table,
                may_kill=may_kill,
                die=raise_kill,
            )
            return InProcessContainer(spec, self.in_process, chaos)
        setting = ContainerSetting(
            plan=self.plan.to_json(),
            ordinal=ordinal,
            journal=str(self.journal.path),
            table=self.target.table,
            ledger_table=self.target.ledger_table,
            may_kill=may_kill,
        )
        return process_container(spec, setting)

    def keep_delivered(self, succeeded: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for message in succeeded:
            group = message.get("Attributes", {}).get("MessageGroupId", "")
            hop = _hop(message["Body"])
            duplicate, replay, number = self._draw(message, group, hop)
            if duplicate:
                kept.append(message)
                self.journal.record("duplicate_delivery", group=group, hop=hop)
            if replay is not None:
                self.sqs.send_message(
                    QueueUrl=self.target.queue_url,
                    MessageBody=replay,
                    MessageGroupId=group,
                    MessageDeduplicationId=f"chaos-replay-{self.plan.seed}-{number}",
                )
                self.journal.record("out_of_order_replay", group=group, hop=_hop(replay), after=hop)
        return kept

    def _draw(
        self, message: dict[str, Any], group: str, hop: int | None
    ) -> tuple[bool, str | None, int]:
        """Whether to deliver ``message`` again, and which older hop to replay after it."""
        with self._lock:
            duplicate = (
                message["MessageId"] not in self._duplicated
                and self.random.random() < self.plan.duplicate
            )
            if duplicate:
                self._duplicated.add(message["MessageId"])
            history = self._history.get(group, []) if hop is not None else []
            older = [body for seen, body in history if hop is not None and seen < hop]
            replay = (
                self.random.choice(older)
                if older and self.random.random() < self.plan.replay
                else None
            )
            if hop is not None:
                self._history.setdefault(group, []).append((hop, message["Body"]))
            self._replays += replay is not None
            return duplicate, replay, self._replays


def _hop(body: str) -> int | None:
    try:
        hop = json.loads(body).get("hop")
    except (ValueError, AttributeError):
        return None
    return hop if isinstance(hop, int) and not isinstance(hop, bool) else None


def poller_client(endpoints: Endpoints, plan: ChaosPlan, journal: FaultJournal) -> SQSClient:
    """The fleet's SQS client, throttled on its receive/delete/visibility calls."""
    sqs = new_client("sqs", endpoints)
    rng = random.Random(sub_seed(plan.seed, "poller"))
    lock = threading.Lock()

    def throttle(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        text = target.decode() if isinstance(target, bytes) else str(target)
        operation = text.rsplit(".", 1)[-1]
        if operation not in POLLER_OPERATIONS:
            return None
        with lock:
            hit = rng.random() < plan.poller_throttle
        if not hit:
            return None
        journal.record("throttle.poller", operation=operation)
        return error_response(request, "sqs", "ThrottlingException", 400)

    # What a before-send handler returns is the response (the stubs say None).
    sqs.meta.events.register("before-send.sqs", cast("Callable[..., None]", throttle))
    return sqs
