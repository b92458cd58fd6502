"""Chaos mode for the local fleet: faults at random, reproducible from a seed, then proof.

``scavenger demo --chaos --seed S`` (and the chaos tests) run the demo's sweep
while injecting, from outside the product:

- kills of worker containers mid-invocation (SIGKILL; a :class:`SimulatedKill`
  when the container is a thread): before a delete (mid-page), after a delete
  and before its checkpoint, after a checkpoint, after sending a continuation
  and before the record is acknowledged;
- throttling and HTTP 500s on the workers' DynamoDB and SQS calls, answered
  before the request is sent (nothing happened), and 500s answered after it was
  sent (it did happen: botocore and the worker retry something already done);
  throttling of the fleet's own SQS calls;
- duplicate deliveries (a succeeded record left on the queue) and out-of-order
  redelivery (an older hop of a segment sent again after a newer one);
- a concurrent writer that refreshes expired items and inserts new ones,
  recording what it changed and when;
- poison messages.

The faults come from botocore event hooks installed in each container by the
local bootstrap (:func:`container_handler`, when ``SCAVENGER_CHAOS`` is set) and
from the fleet's :class:`~scavenger.local.fleet.FleetHooks`; worker/ and
planner/ know nothing of them. Then the run is driven to completion (the
product's redrive, then the fleet again, without faults) and checked against
what was seeded and what the writer did.

Reproducibility: one ``random.Random`` per seed draws the plan (rates, counts,
budgets) and the data; each decision stream (every container by its start
order, the fleet, the writer, the poison) has its own sub-seed derived from
the seed. A rerun draws the same plan, data and streams; which record meets a
given decision still depends on the timing of a concurrent fleet.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError
from botocore.httpsession import URLLib3Session

from scavenger import aws
from scavenger.config import load_sweeps_json
from scavenger.dlq import DeadLetterQueue
from scavenger.errors import ScavengerError
from scavenger.expiry import parse_instant
from scavenger.ledger import Ledger
from scavenger.local.demo import (
    OFFSETS,
    SWEEP_NAME,
    DemoObserver,
    DemoResources,
    QuietObserver,
    SeededItem,
    check_boundary,
    create_resources,
    delete_mode_for,
    plan_run,
    remaining_keys,
    seed_table,
    worker_environment,
    write_sweep_config,
)
from scavenger.local.emulator import DynamoDBBackend, Emulator, Endpoints
from scavenger.local.fleet import Fleet, FleetOptions, FleetStats, check_timeout
from scavenger.local.function import (
    CHAOS_VARIABLE,
    KILL_GRACE_SECONDS,
    Container,
    FunctionError,
    FunctionHost,
    FunctionSpec,
    Invocation,
    LambdaContext,
)
from scavenger.ops.dlq import Redriver
from scavenger.runtime import Runtime
from scavenger.settings import Settings

Key = tuple[int, str]  # (WorkerId, StartTime) of the demo table
Handler = Callable[[Any, Any], Any]

KILL_POINTS = ("mid_page", "after_delete", "after_checkpoint", "after_continuation")
SERVICES = ("dynamodb", "sqs")
BATCH = "BatchExecuteStatement"  # the batch delete path's one call
POLLER_OPERATIONS = frozenset(
    {"ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"}
)
# Journal kinds that are bookkeeping for the check, not faults: deletes that landed,
# checkpoints that landed (counting the deletes before them), records that ended
# (their deletes since the last checkpoint are never counted), and deletes whose
# response was lost (the retry found the item gone and counted it as skipped).
BOOKKEEPING = "ledger."
DELETED = "ledger.deleted"
CHECKPOINT_SENT = "ledger.checkpoint_sent"
CHECKPOINTED = "ledger.checkpointed"
SETTLED = "ledger.settled"
UNCOUNTED = "ledger.uncounted"
UNSETTLED_CAUSE = "container died unsettled (killed at its deadline)"
CALL = "scavenger.chaos"  # key of the call record in botocore's request context
INSERTED_WORKER_IDS = 10_000_000  # keys of inserted items start here, clear of the seeded ones
MAX_RECOVERY_ROUNDS = 6

DEFAULT_ITEMS = 2_000
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_PAGE_SIZE = 50
DEFAULT_MAX_RECEIVE_COUNT = 3


def sub_seed(seed: int, *parts: object) -> int:
    """A seed for one decision stream, derived from the run's seed and the stream's name."""
    text = "\x1f".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


# -- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosPlan:
    """Every rate, count and budget of one chaos run, drawn from its seed.

    Rates are per call (kills: per call at that point; errors: per attempt of a
    worker's call), per succeeded record (duplicate, replay), or a share of the
    expired items (refresh).
    """

    seed: int
    kill: dict[str, float]
    max_kills: int
    throttle: dict[str, float]
    error_500: dict[str, float]
    error_500_after_send: dict[str, float]
    poller_throttle: float
    duplicate: float
    replay: float
    refresh_share: float
    inserts_fresh: int
    inserts_expired: int
    poison: int

    @classmethod
    def from_seed(cls, seed: int, items: int, error_scale: float = 1.0) -> ChaosPlan:
        """``error_scale`` multiplies the throttle and 500 rates: botocore backs off up
        to a second per throttle (standard mode), which dominates a small run's time."""
        rng = random.Random(sub_seed(seed, "plan"))

        def rate(low: float, high: float) -> float:
            return round(rng.uniform(low, high), 4)

        per_service = {
            service: tuple(
                round(error_scale * value, 4)
                for value in (rate(0.01, 0.08), rate(0.0, 0.02), rate(0.0, 0.02))
            )
            for service in SERVICES
        }
        return cls(
            seed=seed,
            kill=dict(
                zip(
                    KILL_POINTS,
                    (rate(0.0, 0.006), rate(0.0, 0.006), rate(0.0, 0.04), rate(0.05, 0.4)),
                    strict=True,
                )
            ),
            max_kills=max(2, min(30, items // 150)),
            throttle={service: values[0] for service, values in per_service.items()},
            error_500={service: values[1] for service, values in per_service.items()},
            error_500_after_send={service: values[2] for service, values in per_service.items()},
            poller_throttle=round(error_scale * rate(0.0, 0.05), 4),
            duplicate=rate(0.03, 0.25),
            replay=rate(0.03, 0.25),
            refresh_share=rate(0.02, 0.08),
            inserts_fresh=max(1, round(items * rate(0.005, 0.02))),
            inserts_expired=max(1, round(items * rate(0.005, 0.02))),
            poison=rng.randint(1, 3),
        )

    def quiet(self) -> ChaosPlan:
        """The same plan with every fault off (the recovery rounds)."""
        return replace(
            self,
            kill=dict.fromkeys(self.kill, 0.0),
            max_kills=0,
            throttle=dict.fromkeys(SERVICES, 0.0),
            error_500=dict.fromkeys(SERVICES, 0.0),
            error_500_after_send=dict.fromkeys(SERVICES, 0.0),
            poller_throttle=0.0,
            duplicate=0.0,
            replay=0.0,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChaosPlan:
        return cls(**data)


# -- the fault journal ------------------------------------------------------------------------


class FaultJournal:
    """Every injected fault as one JSON line, from the fleet and from every container.

    Each line is one ``write`` on a file opened with O_APPEND, so lines from
    processes and threads never interleave, and a container's line is on disk
    before it kills itself.
    """

    def __init__(self, path: Path):
        self.path = path

    def record(self, kind: str, **detail: Any) -> None:
        line = json.dumps({"kind": kind, **detail}, separators=(",", ":")) + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode())
        finally:
            os.close(descriptor)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def faults(self) -> Counter[str]:
        return Counter(e["kind"] for e in self.entries() if not e["kind"].startswith(BOOKKEEPING))

    def books(self) -> Books:
        """Replays each container's deletes and checkpoints in order (a container writes
        its lines one at a time) into the deletes the ledger never counted."""
        books = Books()
        pending: dict[int, list[Key]] = {}
        sent: set[int] = set()  # containers whose last line is a checkpoint being sent
        for entry in self.entries():
            kind, container = entry["kind"], entry.get("container", -1)
            if kind != CHECKPOINT_SENT:
                sent.discard(container)
            if kind == DELETED:
                pending.setdefault(container, []).append(_key(entry["key"]))
            elif kind == CHECKPOINT_SENT:
                sent.add(container)
            elif kind == CHECKPOINTED:
                pending.pop(container, None)
            elif kind == SETTLED:
                books.uncounted |= dict.fromkeys(pending.pop(container, []), entry["cause"])
            elif kind == UNCOUNTED:
                books.uncounted[_key(entry["key"])] = entry["cause"]
        for container, keys in pending.items():
            if container in sent:
                books.in_flight.append(set(keys))
            else:
                books.uncounted |= dict.fromkeys(keys, UNSETTLED_CAUSE)
        return books


@dataclass
class Books:
    """Deletes the ledger never counted (and why), and those of containers that died
    while the checkpoint carrying them was in flight: applied or not, as a whole."""

    uncounted: dict[Key, str] = field(default_factory=dict)
    in_flight: list[set[Key]] = field(default_factory=list)

    def gap(self, gone: set[Key], ledger_deleted: int) -> int:
        """0 when the ledger's total is the items gone less those never counted, up to
        whole in-flight checkpoints; otherwise how far off it is."""
        certain = set(self.uncounted)
        off = len(gone) - len(certain & gone) - ledger_deleted + len(certain - gone)
        possible = {0}
        for keys in self.in_flight:
            possible |= {total + len(keys & gone) for total in possible}
        return 0 if off in possible else off


def _key(raw: list[Any]) -> Key:
    return (int(raw[0]), str(raw[1]))


# -- faults inside a worker container ---------------------------------------------------------


class SimulatedKill(BaseException):
    """An in-process container's SIGKILL: unwinds the handler (the product catches
    Exception, never this) and no AWS call of the invocation follows it."""


@dataclass
class CallRecord:
    """One API call as the chaos hooks follow it across botocore's attempts."""

    operation: str
    params: dict[str, Any]
    landed: bool = False  # an attempt reached the service and succeeded
    # BatchExecuteStatement: the statements the service sees (failed ones taken out).
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


class _Raw:
    """The body of a synthetic response, as botocore reads it."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def error_response(
    request: AWSPreparedRequest, service: str, code: str, status: int
) -> AWSResponse:
    """What the service would answer with ``code``, in its protocol (both speak JSON)."""
    prefix = "com.amazonaws.dynamodb.v20120810" if service == "dynamodb" else "com.amazonaws.sqs"
    body = json.dumps({"__type": f"{prefix}#{code}", "message": "injected by chaos mode"})
    headers = {"x-amzn-RequestId": uuid.uuid4().hex, "Content-Type": "application/x-amz-json-1.0"}
    if service == "sqs":
        headers["x-amzn-query-error"] = f"{code};{'Receiver' if status >= 500 else 'Sender'}"
    http_headers: Any = headers
    return AWSResponse(request.url, status, http_headers, _Raw(body.encode()))


def _item_key(key: Mapping[str, Any]) -> Key:
    return (int(key["WorkerId"]["N"]), str(key["StartTime"]["S"]))


class ContainerChaos:
    """The faults of one container, as botocore hooks on its DynamoDB and SQS clients.

    It also keeps the books the final check needs: deletes that happened but that
    the ledger will never count, because the container died (or its record failed)
    before the checkpoint that carries them, or because the delete's response was
    lost and the retry found the item gone (counted as skipped).
    """

    def __init__(
        self,
        plan: ChaosPlan,
        ordinal: int,
        journal: FaultJournal,
        *,
        table: str,
        ledger_table: str,
        may_kill: bool,
        die: Callable[[str], None],
    ):
        self.plan = plan
        self.ordinal = ordinal
        self.journal = journal
        self.table = table
        self.ledger_table = ledger_table
        self.may_kill = may_kill
        self.die = die
        self.random = random.Random(sub_seed(plan.seed, "container", ordinal))
        self.pending = 0  # deletes since the last checkpoint that landed
        self.segment: str | None = None
        self._http = URLLib3Session(timeout=10)

    def install(self, client: Any) -> None:
        service = client.meta.service_model.endpoint_prefix
        events = client.meta.events
        events.register("before-parameter-build", self._remember)
        events.register("before-call", self._before_call)

        def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            return self._before_send(service, request)

        events.register(f"before-send.{service}", before_send)
        events.register("after-call", self._after_call)

    def wrap(self, handler: Handler) -> Handler:
        def invoke(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                self._settle("record ended before its checkpoint")

        return invoke

    # -- hooks --------------------------------------------------------------------------

    def _remember(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        context[CALL] = CallRecord(model.name, dict(params))

    def _before_call(
        self, model: Any, context: dict[str, Any], params: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        call: CallRecord | None = context.get(CALL)
        if call is None:
            return None
        part = self._segment_read(call)
        if part and part != self.segment:
            self._settle("record ended before its checkpoint")
            self.segment = part
        if call.operation == "DeleteItem" and call.params.get("TableName") == self.table:
            self._maybe_kill("mid_page")
        if call.operation == BATCH and params is not None:
            self._maybe_kill("mid_page")
            return self._fail_statements(call, params)
        if self._carries_deletes(call):
            self.journal.record(CHECKPOINT_SENT, container=self.ordinal)
        return None

    def _fail_statements(self, call: CallRecord, params: dict[str, Any]) -> Any:
        """Throttle or fail single statements of a batch, as DynamoDB does in
        ``Responses[i].Error``: they are taken out of the request (they never run) and
        their errors put back in place when the answer comes."""
        rate = self.plan.throttle.get("dynamodb", 0.0) + self.plan.error_500.get("dynamodb", 0.0)
        body = json.loads(params["body"])
        statements = body["Statements"]
        call.failed = [i for i in range(len(statements)) if self.random.random() < rate]
        call.sent = [i for i in range(len(statements)) if i not in call.failed]
        for _ in call.failed:
            self.journal.record("statement_error.dynamodb", operation=BATCH)
        if not call.failed:
            return None
        if not call.sent:
            parsed = {"Responses": [_statement_error(self.random) for _ in statements]}
            call.failed = []
            headers: Any = {}
            http = AWSResponse("https://chaos", 200, headers, _Raw(json.dumps(parsed).encode()))
            return http, parsed
        body["Statements"] = [statements[i] for i in call.sent]
        params["body"] = json.dumps(body).encode()
        return None

    def _segment_read(self, call: CallRecord) -> str:
        """The SEG# part a ledger read names: a record's claim (BatchGetItem of the
        segment and its run) or a GetItem of the segment; "" for any other call."""
        if call.operation == "GetItem" and call.params.get("TableName") == self.ledger_table:
            keys = [call.params.get("Key", {})]
        elif call.operation == "BatchGetItem":
            keys = call.params.get("RequestItems", {}).get(self.ledger_table, {}).get("Keys", [])
        else:
            return ""
        parts = (str(key.get("part", {}).get("S", "")) for key in keys)
        return next((part for part in parts if part.startswith("SEG#")), "")

    def _before_send(self, service: str, request: AWSPreparedRequest) -> AWSResponse | None:
        """Per attempt: throttle or fail it unsent, or send it and answer 500 anyway."""
        call: CallRecord | None = getattr(request, "context", {}).get(CALL)
        if call is None:
            return None
        draw = self.random.random()
        throttle = self.plan.throttle.get(service, 0.0)
        before = throttle + self.plan.error_500.get(service, 0.0)
        after = before + self.plan.error_500_after_send.get(service, 0.0)
        if draw < throttle:
            code = (
                self.random.choice(
                    ("ProvisionedThroughputExceededException", "ThrottlingException")
                )
                if service == "dynamodb"
                else "ThrottlingException"
            )
            self.journal.record(f"throttle.{service}", operation=call.operation)
            return error_response(request, service, code, 400)
        if draw < before:
            self.journal.record(f"error_500.{service}", operation=call.operation)
            return error_response(request, service, _internal(service), 500)
        if draw < after:
            real = self._http.send(request)
            _ = real.content
            self.journal.record(
                f"error_500_after_send.{service}",
                operation=call.operation,
                landed=real.status_code == 200,
            )
            if real.status_code == 200 and not call.landed:
                call.landed = call.operation != BATCH  # a batch's retry sends other statements
                self._landed(call, real.content)
            return error_response(request, service, _internal(service), 500)
        return None

    def _landed(self, call: CallRecord, content: bytes = b"") -> None:
        """An attempt took effect though its caller sees a 500: book it now (a kill may
        come before the call returns)."""
        if call.operation == BATCH:
            # The statements that deleted: a retry finds those items gone (skipped).
            for key in self._batch_deletes(call, json.loads(content or b"{}")):
                self.journal.record(UNCOUNTED, cause="delete response lost", key=key)
        elif call.operation == "DeleteItem" and call.params.get("TableName") == self.table:
            # Whatever follows (a retry finds the item gone and counts it as skipped,
            # or the container dies), the ledger will not count this delete.
            key = list(_item_key(call.params["Key"]))
            self.journal.record(UNCOUNTED, cause="delete response lost", key=key)
        elif self._carries_deletes(call):
            self.pending = 0
            self.journal.record(CHECKPOINTED, container=self.ordinal)

    @staticmethod
    def _batch_deletes(call: CallRecord, parsed: dict[str, Any]) -> list[list[Any]]:
        """The keys a batch's answer says it deleted (old item back, no error)."""
        statements = call.params.get("Statements", [])
        sent = call.sent or list(range(len(statements)))
        keys = []
        for index, answer in zip(sent, parsed.get("Responses", []), strict=False):
            if "Item" in answer and "Error" not in answer:
                first, second = statements[index]["Parameters"][:2]
                keys.append(list(_item_key({"WorkerId": first, "StartTime": second})))
        return keys

    def _carries_deletes(self, call: CallRecord) -> bool:
        return self.pending > 0 and _is_checkpoint(call, self.ledger_table)

    def _after_call(
        self,
        http_response: Any,
        model: Any,
        context: dict[str, Any],
        parsed: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        parsed = parsed if parsed is not None else {}
        call: CallRecord | None = context.get(CALL)
        if call is None:
            return
        ok = http_response is not None and http_response.status_code == 200
        table = call.params.get("TableName")
        if call.operation == BATCH and ok and "Responses" in parsed:
            deleted = self._batch_deletes(call, parsed)
            for index in call.failed:
                parsed["Responses"].insert(index, _statement_error(self.random))
            call.failed, call.sent = [], []
            for key in deleted:
                self.pending += 1
                self.journal.record(DELETED, container=self.ordinal, key=key)
            if deleted:
                self._maybe_kill("after_delete")
        elif call.operation == "DeleteItem" and table == self.table:
            if ok:  # (an attempt that landed earlier would have left nothing to delete)
                self.pending += 1
                key = list(_item_key(call.params["Key"]))
                self.journal.record(DELETED, container=self.ordinal, key=key)
                self._maybe_kill("after_delete")
        elif _is_checkpoint(call, self.ledger_table):
            if ok and self.pending:
                self.pending = 0
                self.journal.record(CHECKPOINTED, container=self.ordinal)
            if ok:
                self._maybe_kill("after_checkpoint")
        elif call.operation == "SendMessage" and ok:
            self._maybe_kill("after_continuation")

    # -- kills and books ------------------------------------------------------------------

    def _maybe_kill(self, point: str) -> None:
        if not self.may_kill or self.random.random() >= self.plan.kill.get(point, 0.0):
            return
        self.journal.record(f"kill.{point}", container=self.ordinal)
        self._settle(f"killed {point.replace('_', ' ')}")
        self.may_kill = False
        self.die(point)

    def _settle(self, cause: str) -> None:
        if self.pending:
            self.pending = 0
            self.journal.record(SETTLED, container=self.ordinal, cause=cause)


def _statement_error(rng: random.Random) -> dict[str, Any]:
    code = rng.choice(("ProvisionedThroughputExceeded", "ThrottlingError", "InternalServerError"))
    return {"Error": {"Code": code, "Message": "injected by chaos"}}


def _internal(service: str) -> str:
    return "InternalServerError" if service == "dynamodb" else "InternalError"


def _is_checkpoint(call: CallRecord, ledger_table: str) -> bool:
    """A ledger write that carries a page's counters (Ledger.checkpoint): an UpdateItem,
    or for a segment's last page a transaction whose first write it is."""
    update = call.params
    if call.operation == "TransactWriteItems":
        update = (call.params.get("TransactItems") or [{}])[0].get("Update", {})
    elif call.operation != "UpdateItem":
        return False
    return update.get("TableName") == ledger_table and ":deleted" in update.get(
        "ExpressionAttributeValues", {}
    )


def _sigkill(_: str) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _raise_kill(point: str) -> None:
    raise SimulatedKill(point)


@dataclass(frozen=True)
class ContainerSetting:
    """What ``SCAVENGER_CHAOS`` carries into a container process."""

    plan: dict[str, Any]
    ordinal: int
    journal: str
    table: str
    ledger_table: str
    may_kill: bool


def container_handler(handler: Handler, setting_json: str) -> Handler:
    """Container bootstrap (function.py): install this container's faults on the shared
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
    for service in SERVICES:
        chaos.install(aws.client(service))
    return chaos.wrap(handler)


# -- an in-process container (the cheap variant for many seeds) ---------------------------------


_session_lock = threading.Lock()


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


def new_client(service: str, endpoints: Endpoints) -> Any:
    """A client of its own (never the shared factory's), so hooks stay on it alone.

    Clients come from one session (its loaded service models make a client ~5x
    cheaper to create); a session is not thread-safe, hence the lock.
    """
    endpoint = endpoints.sqs if service == "sqs" else endpoints.dynamodb
    with _session_lock:
        return _session().client(
            service,
            endpoint_url=endpoint,
            region_name=endpoints.region,
            config=aws.BOTO_CONFIG,
        )


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
        environment = dict(spec.environment)
        runtime = Runtime(
            settings=Settings.from_env(environment),
            sweeps=load_sweeps_json(environment["SCAVENGER_SWEEPS"]),
            dynamodb=dynamodb,
            sqs=sqs,
        )

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


# -- faults in the fleet -------------------------------------------------------------------------


class ChaosFleetHooks:
    """The fleet's side: containers with their faults, duplicates and out-of-order replays."""

    def __init__(
        self,
        plan: ChaosPlan,
        journal: FaultJournal,
        *,
        sqs: Any,
        queue_url: str,
        resources: DemoResources,
        workers: int,
        in_process: Endpoints | None,
    ):
        self.plan = plan
        self.journal = journal
        self.sqs = sqs
        self.queue_url = queue_url
        self.resources = resources
        self.workers = workers
        self.in_process = in_process
        self.random = random.Random(sub_seed(plan.seed, "fleet"))
        self._lock = threading.Lock()
        self._started = 0
        self._history: dict[str, list[tuple[int, str]]] = {}
        self._duplicated: set[str] = set()
        self._replays = 0

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
                table=self.resources.table,
                ledger_table=self.resources.ledger_table,
                may_kill=may_kill,
                die=_raise_kill,
            )
            return InProcessContainer(spec, self.in_process, chaos)
        setting = ContainerSetting(
            plan=self.plan.to_json(),
            ordinal=ordinal,
            journal=str(self.journal.path),
            table=self.resources.table,
            ledger_table=self.resources.ledger_table,
            may_kill=may_kill,
        )
        environment = dict(spec.environment) | {CHAOS_VARIABLE: json.dumps(asdict(setting))}
        return Container(replace(spec, environment=environment))

    def keep_delivered(self, succeeded: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for message in succeeded:
            group = message.get("Attributes", {}).get("MessageGroupId", "")
            hop = _hop(message["Body"])
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
                number = self._replays
            if duplicate:
                kept.append(message)
                self.journal.record("duplicate_delivery", group=group, hop=hop)
            if replay is not None:
                self.sqs.send_message(
                    QueueUrl=self.queue_url,
                    MessageBody=replay,
                    MessageGroupId=group,
                    MessageDeduplicationId=f"chaos-replay-{self.plan.seed}-{number}",
                )
                self.journal.record("out_of_order_replay", group=group, hop=_hop(replay), after=hop)
        return kept


def _hop(body: str) -> int | None:
    try:
        hop = json.loads(body).get("hop")
    except (ValueError, AttributeError):
        return None
    return hop if isinstance(hop, int) and not isinstance(hop, bool) else None


def poller_client(endpoints: Endpoints, plan: ChaosPlan, journal: FaultJournal) -> Any:
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

    sqs.meta.events.register("before-send.sqs", throttle)
    return sqs


# -- the concurrent writer -------------------------------------------------------------------------


@dataclass(frozen=True)
class WriterChange:
    """One write of the concurrent writer: what, to which key, when (seconds after start)."""

    action: str  # refresh | refresh_too_late | insert_fresh | insert_expired
    key: Key
    at: float
    age: str


class ConcurrentWriter(threading.Thread):
    """Refreshes random expired items and inserts new ones while the sweep runs.

    A refresh is a conditional update (the item must still exist): when the run
    has already deleted the item, nothing is written and the attempt is recorded
    as ``refresh_too_late``, so the writer never resurrects an item.
    """

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        expired: list[SeededItem],
        plan: ChaosPlan,
        cutoff: datetime,
        journal: FaultJournal,
        spread_seconds: float,
    ):
        super().__init__(name="chaos-writer", daemon=True)
        self.dynamodb = dynamodb
        self.table = table
        self.cutoff = cutoff
        self.journal = journal
        self.random = random.Random(sub_seed(plan.seed, "writer"))
        refreshes = max(1, round(len(expired) * plan.refresh_share)) if expired else 0
        targets = self.random.sample(expired, min(refreshes, len(expired)))
        self.operations: list[tuple[str, SeededItem | None]] = [
            ("refresh", item) for item in targets
        ]
        self.operations += [("insert_fresh", None)] * plan.inserts_fresh
        self.operations += [("insert_expired", None)] * plan.inserts_expired
        self.random.shuffle(self.operations)
        self.pause = spread_seconds / max(1, len(self.operations))
        self.changes: list[WriterChange] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._began = time.monotonic()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        self._began = time.monotonic()
        try:
            for number, (action, item) in enumerate(self.operations):
                if self._halt.wait(self.random.uniform(0, 2 * self.pause)):
                    return
                if item is not None:
                    self._refresh(item)
                else:
                    self._insert(action, number)
        except BaseException as exc:
            self.error = exc

    def _age(self, fresh: bool) -> str:
        now = datetime.now(UTC)
        if fresh:
            instant = now - timedelta(seconds=self.random.uniform(60, 24 * 3600))
        else:
            instant = self.cutoff - timedelta(seconds=self.random.uniform(3600, 10 * 86400))
        offset = self.random.choice(OFFSETS)
        text = instant.isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z") if offset == "Z" else _with_offset(instant, offset)

    def _refresh(self, item: SeededItem) -> None:
        age = self._age(fresh=True)
        key = {"WorkerId": {"N": str(item.key[0])}, "StartTime": {"S": item.key[1]}}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET StartExecutionTime = :age",
                ConditionExpression="attribute_exists(WorkerId)",
                ExpressionAttributeValues={":age": {"S": age}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self._note("refresh_too_late", item.key, age)
            return
        self._note("refresh", item.key, age)

    def _insert(self, action: str, number: int) -> None:
        age = self._age(fresh=action == "insert_fresh")
        key: Key = (INSERTED_WORKER_IDS + number, datetime.now(UTC).isoformat())
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "WorkerId": {"N": str(key[0])},
                "StartTime": {"S": key[1]},
                "StartExecutionTime": {"S": age},
                "Completed": {"N": "1"},
                "Host": {"S": "chaos-writer"},
            },
            ConditionExpression="attribute_not_exists(WorkerId)",
        )
        self._note(action, key, age)

    def _note(self, action: str, key: Key, age: str) -> None:
        self.changes.append(
            WriterChange(action, key, round(time.monotonic() - self._began, 3), age)
        )
        self.journal.record(f"writer.{action}", key=list(key))

    def keys(self, action: str) -> set[Key]:
        return {change.key for change in self.changes if change.action == action}


def _with_offset(instant: datetime, offset: str) -> str:
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = offset[1:].split(":")
    zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    return instant.astimezone(zone).isoformat(timespec="seconds")


# -- poison messages -------------------------------------------------------------------------------


def poison_bodies(plan: ChaosPlan) -> list[str]:
    """Bodies that are not segment messages, each unique to the run."""
    rng = random.Random(sub_seed(plan.seed, "poison"))
    shapes = (
        "not JSON at all #{n}",
        '{{"v": 1, "chaos": {n}}}',
        "[{n}]",
        '{{"v": 99, "run_id": "poison-{n}", "sweep": "x", "table": "x", "segment": 0, '
        '"total_segments": 1, "cutoff": "2020-01-01T00:00:00Z", "cursor": null, "hop": 0, '
        '"dry_run": false}}',
    )
    return [rng.choice(shapes).format(n=f"{plan.seed}-{number}") for number in range(plan.poison)]


# -- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosOptions:
    seed: int
    items: int = DEFAULT_ITEMS
    segments: int | None = None
    workers: int = 2
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    page_size: int = DEFAULT_PAGE_SIZE
    safety_margin_seconds: float | None = None
    deletes_per_second: int = 0
    retry_delay: int = 1
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT
    error_scale: float = 1.0
    in_process: bool = False
    dynamodb: DynamoDBBackend = "moto"
    log_path: Path | None = None

    def __post_init__(self) -> None:
        if self.items < 1:
            raise ScavengerError(f"--items: {self.items} must be at least 1")
        if self.workers < 1:
            raise ScavengerError(f"--workers: {self.workers} must be at least 1")
        if self.segments is not None and not 1 <= self.segments <= 10_000:
            raise ScavengerError(f"--segments: {self.segments} must be in 1..10000")
        environment = (
            {"SCAVENGER_SAFETY_MARGIN_SECONDS": str(self.safety_margin_seconds)}
            if self.safety_margin_seconds
            else None
        )
        with _environment(environment):
            check_timeout(self.timeout_seconds, 1)

    @property
    def total_segments(self) -> int:
        return self.segments if self.segments is not None else 2 * self.workers


@contextlib.contextmanager
def _environment(values: Mapping[str, str] | None) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values or {}}
    os.environ.update(values or {})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class ChaosReport:
    """What the chaos run did, and what the check found (every ``lost``/``wrong`` must be 0)."""

    seed: int
    run_id: str
    in_process: bool
    plan: ChaosPlan
    items: int
    expired: int
    deleted: int
    kept: int
    wrongly_deleted: list[Key]
    missed: list[Key]
    refreshed: int
    refreshed_too_late: int
    inserted_fresh: int
    inserted_expired: int
    inserted_expired_deleted: int
    gone_by_run: int
    ledger_deleted: int
    uncounted: Counter[str]
    ledger_gap: int
    segments: int
    segments_not_done: list[int]
    run_done: bool
    queue_left: int
    dlq_legit: int
    dlq_poison: int
    poison_sent: int
    recovery_rounds: int
    redriven: int
    faults: Counter[str]
    fleet: FleetStats
    recovery_invocations: int
    seconds: float
    writer: list[WriterChange] = field(default_factory=list)
    log_path: str | None = None
    backend: str = "moto"

    @property
    def lost(self) -> int:
        """Segments not done, messages left on the queue, legitimate messages left in the
        DLQ, and poison messages that did not end in the DLQ."""
        return (
            len(self.segments_not_done)
            + int(not self.run_done)
            + self.queue_left
            + self.dlq_legit
            + abs(self.poison_sent - self.dlq_poison)
        )

    @property
    def ok(self) -> bool:
        return not (self.wrongly_deleted or self.missed or self.lost or self.ledger_gap)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "chaos": True,
            "seed": self.seed,
            "dynamodb": self.backend,
            "delete_mode": delete_mode_for(self.backend),
            "rerun": f"scavenger demo --chaos --seed {self.seed} --items {self.items}",
            "run_id": self.run_id,
            "in_process": self.in_process,
            "items": self.items,
            "expired": self.expired,
            "deleted": self.deleted,
            "kept": self.kept,
            "wrongly_deleted": len(self.wrongly_deleted),
            "missed": len(self.missed),
            "lost": self.lost,
            "ledger_gap": self.ledger_gap,
            "refreshed": self.refreshed,
            "refreshed_too_late": self.refreshed_too_late,
            "inserted_fresh": self.inserted_fresh,
            "inserted_expired": self.inserted_expired,
            "inserted_expired_deleted": self.inserted_expired_deleted,
            "gone_by_run": self.gone_by_run,
            "ledger_deleted": self.ledger_deleted,
            "uncounted_deletes": dict(sorted(self.uncounted.items())),
            "segments": self.segments,
            "segments_not_done": self.segments_not_done,
            "run_done": self.run_done,
            "queue_left": self.queue_left,
            "dlq": self.dlq_legit + self.dlq_poison,
            "dlq_legit": self.dlq_legit,
            "dlq_poison": self.dlq_poison,
            "poison_sent": self.poison_sent,
            "recovery_rounds": self.recovery_rounds,
            "redriven": self.redriven,
            "faults": dict(sorted(self.faults.items())),
            "faults_total": sum(self.faults.values()),
            "invocations": self.fleet.invocations + self.recovery_invocations,
            "continuations": self.fleet.continuations,
            "cold_starts": self.fleet.cold_starts,
            "function_errors": self.fleet.function_errors,
            "timeouts": self.fleet.timeouts,
            "seconds": round(self.seconds, 3),
            "deleted_per_second": round(self.gone_by_run / self.seconds, 1) if self.seconds else 0,
            "api_calls": dict(sorted(self.fleet.api_calls.items())),
            "plan": self.plan.to_json(),
            "wrongly_deleted_keys": [list(key) for key in self.wrongly_deleted[:20]],
            "missed_keys": [list(key) for key in self.missed[:20]],
            "log_file": self.log_path,
        }

    def summary(self) -> str:
        """One line: the seed, the verdict and the faults injected per kind."""
        faults = ", ".join(f"{kind}={count}" for kind, count in sorted(self.faults.items()))
        return (
            f"seed {self.seed}: {'PASS' if self.ok else 'FAIL'} items={self.items} "
            f"deleted={self.deleted} wrongly_deleted={len(self.wrongly_deleted)} "
            f"missed={len(self.missed)} lost={self.lost} ledger_gap={self.ledger_gap} "
            f"redriven={self.redriven} rounds={self.recovery_rounds} | {faults}"
        )


def run_chaos(
    options: ChaosOptions,
    observer: DemoObserver | None = None,
    endpoints: Endpoints | None = None,
) -> ChaosReport:
    """Seed, plan, sweep under faults, drive to completion, check. With ``endpoints``
    (a running emulator, as the tests share one), its resources get a unique suffix."""
    observer = observer or QuietObserver()
    log_path = options.log_path or _temporary_log()
    try:
        with tempfile.TemporaryDirectory(prefix="scavenger-chaos-") as workdir:
            if endpoints is not None:
                report = _run(options, endpoints, Path(workdir), log_path, observer, suffix=True)
            else:
                observer.stage(f"starting the emulator (DynamoDB on {options.dynamodb})")
                with Emulator(dynamodb=options.dynamodb) as started:
                    report = _run(options, started, Path(workdir), log_path, observer, suffix=False)
    except BaseException as exc:
        exc.add_note(f"function logs: {log_path}")
        raise
    if report.ok and options.log_path is None:
        log_path.unlink(missing_ok=True)
    else:
        report.log_path = str(log_path)
    return report


def _temporary_log() -> Path:
    handle, name = tempfile.mkstemp(prefix="scavenger-chaos-", suffix=".log")
    os.close(handle)
    return Path(name)


def _run(
    options: ChaosOptions,
    endpoints: Endpoints,
    workdir: Path,
    log_path: Path,
    observer: DemoObserver,
    *,
    suffix: bool,
) -> ChaosReport:
    started = time.monotonic()
    plan = ChaosPlan.from_seed(options.seed, options.items, options.error_scale)
    journal = FaultJournal(workdir / "faults.jsonl")
    dynamodb = new_client("dynamodb", endpoints)
    sqs = new_client("sqs", endpoints)
    observer.stage("creating the table, the FIFO queue and DLQ, and the ledger")
    name_suffix = f"-{uuid.uuid4().hex[:6]}" if suffix else ""
    resources = create_resources(
        dynamodb, sqs, name_suffix, options.timeout_seconds, options.max_receive_count
    )
    sweep = write_sweep_config(
        workdir / "scavenger.toml",
        resources.table,
        options.total_segments,
        options.deletes_per_second,
        delete_mode_for(options.dynamodb),
    )
    now = datetime.now(UTC).replace(microsecond=0)
    truth = seed_table(
        dynamodb,
        resources.table,
        options.items,
        now,
        random.Random(sub_seed(options.seed, "data")),
        observer,
    )
    environment = worker_environment(endpoints, resources, sweep, options.page_size)
    if options.safety_margin_seconds:
        environment["SCAVENGER_SAFETY_MARGIN_SECONDS"] = str(options.safety_margin_seconds)

    observer.stage("planning the run (planner handler)")
    if options.in_process:
        run_id, total_segments = _plan_in_process(environment, endpoints)
    else:
        run_id, total_segments = plan_run(environment, endpoints.region, log_path)
    ledger = Ledger(dynamodb, resources.ledger_table)
    run = ledger.get_run(run_id)
    if run is None:
        raise RuntimeError(f"the planner reported run {run_id}, but the ledger has no such run")
    cutoff = parse_instant(run.cutoff)
    check_boundary(now, cutoff)

    poison = poison_bodies(plan)
    for number, body in enumerate(poison):
        sqs.send_message(
            QueueUrl=resources.queue_url,
            MessageBody=body,
            MessageGroupId=f"chaos-poison#{number}",
            MessageDeduplicationId=f"chaos-poison-{options.seed}-{number}",
        )
        journal.record("poison_message", group=f"chaos-poison#{number}")

    expired = [item for item in truth if item.expired(cutoff)]
    writer = ConcurrentWriter(
        new_client("dynamodb", endpoints),
        resources.table,
        expired,
        plan,
        cutoff,
        journal,
        spread_seconds=max(1.0, options.items / 150),
    )
    observer.stage(
        f"sweeping {total_segments} segments with {options.workers} workers under chaos "
        f"(seed {options.seed})"
    )
    hooks = ChaosFleetHooks(
        plan,
        journal,
        sqs=sqs,
        queue_url=resources.queue_url,
        resources=resources,
        workers=options.workers,
        in_process=endpoints if options.in_process else None,
    )
    writer.start()
    try:
        stats = _fleet(
            options,
            endpoints,
            resources,
            environment,
            log_path,
            hooks,
            poller_client(endpoints, plan, journal),
        ).run(on_tick=_progress(ledger, run_id, total_segments, observer))
    finally:
        writer.stop()

    observer.stage("driving the run to completion: redrive, then the fleet again (no faults)")
    quiet_hooks = (
        ChaosFleetHooks(
            plan.quiet(),
            journal,
            sqs=sqs,
            queue_url=resources.queue_url,
            resources=resources,
            workers=options.workers,
            in_process=endpoints,
        )
        if options.in_process
        else None
    )
    rounds, redriven, recovery_invocations = _recover(
        options, endpoints, resources, environment, log_path, quiet_hooks, sqs, ledger, run_id
    )

    observer.stage("checking the table, the ledger and the queues")
    return _check(
        options=options,
        plan=plan,
        journal=journal,
        truth=truth,
        cutoff=cutoff,
        writer=writer,
        dynamodb=dynamodb,
        sqs=sqs,
        resources=resources,
        ledger=ledger,
        run_id=run_id,
        total_segments=total_segments,
        poison=poison,
        stats=stats,
        rounds=rounds,
        redriven=redriven,
        recovery_invocations=recovery_invocations,
        seconds=time.monotonic() - started,
    )


def _plan_in_process(environment: dict[str, str], endpoints: Endpoints) -> tuple[str, int]:
    """The real planner, called in this process with a runtime of its own."""
    from scavenger.plan import PlanRequest, plan

    runtime = Runtime(
        settings=Settings.from_env(environment),
        sweeps=load_sweeps_json(environment["SCAVENGER_SWEEPS"]),
        dynamodb=new_client("dynamodb", endpoints),
        sqs=new_client("sqs", endpoints),
    )
    (run,) = plan(PlanRequest(sweep=SWEEP_NAME), runtime)["runs"]
    if not run.get("started"):
        raise RuntimeError(f"the planner did not start a run: {run.get('reason')}")
    return str(run["run_id"]), int(run["segments"])


def _fleet(
    options: ChaosOptions,
    endpoints: Endpoints,
    resources: DemoResources,
    environment: dict[str, str],
    log_path: Path,
    hooks: ChaosFleetHooks | None,
    sqs: Any,
) -> Fleet:
    return Fleet(
        FleetOptions(
            queue_url=resources.queue_url,
            workers=options.workers,
            timeout_seconds=options.timeout_seconds,
            environment=environment,
            region=endpoints.region,
            retry_delay=options.retry_delay,
            batch_size=1,
            log_path=log_path,
            hooks=hooks,
            drained_readings=1,  # SQS is always moto here: its counters are exact
            poll_wait_seconds=0,  # and its long poll sleeps through unblocked groups
        ),
        sqs,
    )


def _progress(
    ledger: Ledger, run_id: str, total: int, observer: DemoObserver
) -> Callable[[FleetStats], None]:
    last = [0.0]

    def tick(_: FleetStats) -> None:
        if time.monotonic() - last[0] < 0.5:
            return
        last[0] = time.monotonic()
        segments = ledger.list_segments(run_id)
        done = sum(1 for segment in segments if segment.status == "done")
        observer.sweeping(done, total, sum(segment.counts.deleted for segment in segments))

    return tick


def _recover(
    options: ChaosOptions,
    endpoints: Endpoints,
    resources: DemoResources,
    environment: dict[str, str],
    log_path: Path,
    hooks: ChaosFleetHooks | None,
    sqs: Any,
    ledger: Ledger,
    run_id: str,
) -> tuple[int, int, int]:
    """Redrive what the DLQ holds (the product's redrive; poison stays), then drain the
    queue with the fleet, until the run is done and the DLQ holds no segment message."""
    dlq = DeadLetterQueue(sqs, resources.dlq_url)
    rounds = redriven = invocations = 0
    while rounds < MAX_RECOVERY_ROUNDS:
        run = ledger.get_run(run_id)
        legit = [letter for letter in dlq.peek(None) if letter.segment is not None]
        if run is not None and run.status == "done" and not legit:
            break
        rounds += 1
        redriven += Redriver(dlq, resources.queue_url).run(max_messages=None, dry_run=False).moved
        stats = _fleet(options, endpoints, resources, environment, log_path, hooks, sqs).run()
        invocations += stats.invocations
    return rounds, redriven, invocations


def _queue_count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _check(
    *,
    options: ChaosOptions,
    plan: ChaosPlan,
    journal: FaultJournal,
    truth: list[SeededItem],
    cutoff: datetime,
    writer: ConcurrentWriter,
    dynamodb: Any,
    sqs: Any,
    resources: DemoResources,
    ledger: Ledger,
    run_id: str,
    total_segments: int,
    poison: list[str],
    stats: FleetStats,
    rounds: int,
    redriven: int,
    recovery_invocations: int,
    seconds: float,
) -> ChaosReport:
    """The invariants, from the table, the ledger, the queues and the writer's record.

    - must stay: seeded items never expired, refreshed items (fresh from their
      refresh on), inserted fresh items; any of them gone is wrongly deleted;
    - must go: seeded expired items never refreshed (expired for the whole run);
      any of them left is missed. Inserted expired items may go either way;
    - ledger: the run's ``deleted`` total plus the deletes the ledger cannot have
      counted (journaled by the containers: done before a kill or a failed record
      and never checkpointed, or done by an attempt whose response was lost, so
      the retry counted the item as skipped) equals the items gone from the table.
    """
    remaining = remaining_keys(dynamodb, resources.table)
    seeded = {item.key for item in truth}
    expired = {item.key for item in truth if item.expired(cutoff)}
    refreshed = writer.keys("refresh")
    inserted_fresh = writer.keys("insert_fresh")
    inserted_expired = writer.keys("insert_expired")
    must_stay = (seeded - expired) | refreshed | inserted_fresh
    must_go = expired - refreshed
    gone = (seeded | inserted_fresh | inserted_expired) - remaining

    books = journal.books()
    uncounted = Counter(books.uncounted.values())
    run = ledger.get_run(run_id)
    segments = ledger.list_segments(run_id)
    totals = run.totals if run is not None and run.totals is not None else None
    ledger_deleted = (
        totals.deleted if totals is not None else sum(s.counts.deleted for s in segments)
    )
    ledger_gap = books.gap(gone, ledger_deleted)
    letters = DeadLetterQueue(sqs, resources.dlq_url).peek(None)
    return ChaosReport(
        backend=options.dynamodb,
        seed=options.seed,
        run_id=run_id,
        in_process=options.in_process,
        plan=plan,
        items=len(seeded),
        expired=len(expired),
        deleted=len(must_go & gone),
        kept=len(seeded & remaining),
        wrongly_deleted=sorted(must_stay - remaining),
        missed=sorted(must_go & remaining),
        refreshed=len(refreshed),
        refreshed_too_late=len(writer.keys("refresh_too_late")),
        inserted_fresh=len(inserted_fresh),
        inserted_expired=len(inserted_expired),
        inserted_expired_deleted=len(inserted_expired & gone),
        gone_by_run=len(gone),
        ledger_deleted=ledger_deleted,
        uncounted=uncounted,
        ledger_gap=ledger_gap,
        segments=total_segments,
        segments_not_done=sorted(s.segment for s in segments if s.status != "done")
        + list(range(len(segments), total_segments)),
        run_done=run is not None and run.status == "done",
        queue_left=_queue_count(sqs, resources.queue_url),
        dlq_legit=sum(1 for letter in letters if letter.segment is not None),
        dlq_poison=sum(1 for letter in letters if letter.segment is None and letter.body in poison),
        poison_sent=len(poison),
        recovery_rounds=rounds,
        redriven=redriven,
        faults=journal.faults(),
        fleet=stats,
        recovery_invocations=recovery_invocations,
        seconds=seconds,
        writer=list(writer.changes),
    )
