"""Where a chaos container runs: a process of the local function host, which loads
the faults through the host's hook (:func:`container_handler`), or a thread of the
fleet (:class:`InProcessContainer`, the cheap variant for many seeds); and the
planner called in this process, for the in-process runs."""

from __future__ import annotations

import functools
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.client import BaseClient

from scavenger import aws
from scavenger.config import load_sweeps_json
from scavenger.runtime import Runtime
from scavenger.settings import Settings
from scavenger.tools.local.chaos.books import FaultJournal
from scavenger.tools.local.chaos.faults import ContainerChaos, Handler
from scavenger.tools.local.chaos.plan import ChaosPlan
from scavenger.tools.local.demo import SWEEP_NAME
from scavenger.tools.local.emulator import Endpoints
from scavenger.tools.local.function import (
    KILL_GRACE_SECONDS,
    Container,
    FunctionError,
    FunctionSpec,
    HandlerHook,
    Invocation,
    LambdaContext,
)

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

# What the function host calls at a container's init (its HandlerHook).
CONTAINER_HOOK = "scavenger.tools.local.chaos.hosts.container_handler"


class SimulatedKill(BaseException):
    """An in-process container's SIGKILL: unwinds the handler (the product catches
    Exception, never this) and no AWS call of the invocation follows it."""


@dataclass(frozen=True)
class ContainerSetting:
    """What the host's hook carries into a container process."""

    plan: dict[str, Any]
    ordinal: int
    journal: str
    table: str
    ledger_table: str
    may_kill: bool


def process_container(spec: FunctionSpec, setting: ContainerSetting) -> Container:
    """A container process whose init installs ``setting``'s faults."""
    hook = HandlerHook(CONTAINER_HOOK, json.dumps(asdict(setting)))
    return Container(replace(spec, hook=hook))


def container_handler(handler: Handler, setting_json: str) -> Handler:
    """The host's hook, in the container: install this container's faults on the shared
    clients the worker's runtime uses, and wrap the handler to settle the books."""
    setting = ContainerSetting(**json.loads(setting_json))
    chaos = ContainerChaos(
        ChaosPlan.from_json(setting.plan),
        setting.ordinal,
        FaultJournal(Path(setting.journal)),
        table=setting.table,
        ledger_table=setting.ledger_table,
        may_kill=setting.may_kill,
        die=_sigkill,
    )
    chaos.install(aws.client("dynamodb"))
    chaos.install(aws.client("sqs"))
    return chaos.wrap(handler)


def _sigkill(_: str) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def raise_kill(point: str) -> None:
    raise SimulatedKill(point)


_session_lock = threading.Lock()


@functools.cache
def _session() -> Session:
    import boto3

    return boto3.session.Session()


@overload
def new_client(service: Literal["dynamodb"], endpoints: Endpoints) -> DynamoDBClient: ...
@overload
def new_client(service: Literal["sqs"], endpoints: Endpoints) -> SQSClient: ...
def new_client(service: str, endpoints: Endpoints) -> BaseClient:
    """A client of its own (never the shared factory's), so hooks stay on it alone.

    Clients come from one session (its loaded service models make a client ~5x
    cheaper to create); a session is not thread-safe, hence the lock.
    """
    endpoint = endpoints.sqs if service == "sqs" else endpoints.dynamodb
    with _session_lock:
        made: BaseClient = _session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint,
            region_name=endpoints.region,
            config=aws.BOTO_CONFIG,
        )
    return made


def in_process_runtime(
    environment: Mapping[str, str], dynamodb: DynamoDBClient, sqs: SQSClient
) -> Runtime:
    """A function's runtime, built in this process from its environment and clients."""
    return Runtime(
        settings=Settings.from_env(dict(environment)),
        sweeps=load_sweeps_json(environment["SCAVENGER_SWEEPS"]),
        dynamodb=dynamodb,
        sqs=sqs,
    )


def plan_in_process(environment: Mapping[str, str], endpoints: Endpoints) -> tuple[str, int]:
    """The real planner, called in this process with a runtime of its own."""
    from scavenger.plan import PlanRequest, plan

    dynamodb, sqs = new_client("dynamodb", endpoints), new_client("sqs", endpoints)
    runtime = in_process_runtime(environment, dynamodb, sqs)
    (run,) = plan(PlanRequest(sweep=SWEEP_NAME), runtime)["runs"]
    if not run.get("started"):
        raise RuntimeError(f"the planner did not start a run: {run.get('reason')}")
    return str(run["run_id"]), int(run["segments"])


class InProcessContainer:
    """A container that runs the worker handler on the fleet's own thread.

    No process and no cold start: the chaos tests run many seeds this way. It
    has its own clients and runtime, as a container does; a kill is a
    :class:`SimulatedKill`, after which the container is dead. It cannot be
    stopped at its deadline: an overrun is counted, and its result kept.
    """

    def __init__(self, spec: FunctionSpec, endpoints: Endpoints, chaos: ContainerChaos | None):
        from scavenger.batch import handle

        self.spec = spec
        self.calls: Counter[str] = Counter()
        dynamodb, sqs = new_client("dynamodb", endpoints), new_client("sqs", endpoints)
        for client in (dynamodb, sqs):
            client.meta.events.register("after-call", self._count)
            if chaos is not None:
                chaos.install(client)
        runtime = in_process_runtime(dict(spec.environment), dynamodb, sqs)

        def run(event: Any, context: Any) -> Any:
            return handle(event, context, runtime)

        self.handler: Handler = chaos.wrap(run) if chaos is not None else run
        self.overruns = 0
        self._alive = True

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def invoke(
        self, event: Mapping[str, Any], *, abort: Callable[[], bool] = lambda: False
    ) -> Invocation:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        deadline = started + self.spec.timeout_seconds
        self.calls.clear()
        try:
            result = self.handler(dict(event), LambdaContext(self.spec, request_id, deadline))
        except SimulatedKill as kill:
            self._alive = False
            raise FunctionError(f"{self.spec.name}: killed during {request_id} ({kill})") from None
        except Exception as exc:
            raise FunctionError(f"{self.spec.name}: {type(exc).__name__}: {exc}") from exc
        seconds = time.monotonic() - started
        if seconds > self.spec.timeout_seconds + KILL_GRACE_SECONDS:
            # A thread cannot be stopped at its deadline, and its records are done:
            # count the overrun rather than deliver them again.
            self.overruns += 1
        return Invocation(request_id, result, seconds, Counter(self.calls))

    def alive(self) -> bool:
        return self._alive

    def kill(self) -> None:
        self._alive = False

    def close(self) -> None:
        self._alive = False
