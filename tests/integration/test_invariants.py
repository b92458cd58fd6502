"""One named test per invariant of DESIGN.md ("Invariants every change keeps"), each
under the faults that would break it: writers racing the delete, throttling that
exhausts retries, crashes between the steps of the ledger protocol, duplicates and
stale hops, a segment in the DLQ, and calls slow enough to eat the deadline.

Each test fails when its invariant is broken on purpose in the product: the
mutants in tests/mutants/ (run them with scripts/mutants.py) are the proof.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from planner.handler import handler as planner_handler
from scavenger import aws
from scavenger.queue import SegmentQueue
from scavenger.runtime import lambda_runtime
from scavenger.tools.cli import main as cli_main
from scavenger.tools.ops import dlq as dlq_module
from scavenger.tools.ops.requeue import Requeuer
from tests.conftest import (
    REGION,
    FakeClock,
    FakeContext,
    Stack,
    moto_stack,
    roomy_context,
    settle_records,
    sqs_event,
)
from tests.dataset import (
    Truth,
    key_id,
    make_key,
    remaining_keys,
)
from tests.faults import (
    ErrorInjector,
    RefuseTable,
    StatementFaults,
    error_response,
    on_call,
    tick_per_call,
)
from tests.integration.conftest import drop_tables
from tests.runs import Crash, ledger, queue_size, seed_sweep, start_run
from tests.sweeps import sweep_spec
from worker.handler import handler as worker_handler

pytestmark = pytest.mark.integration

TABLE = "Swept"
SHAPE = "composite_number_string"
SEGMENTS = 3
SWEEP = sweep_spec(table=TABLE, segments=SEGMENTS, completed=True)
MARGIN = 1.5  # the worker's default safety margin (SCAVENGER_SAFETY_MARGIN_SECONDS)
DATA_OPERATIONS = frozenset({"Scan", "DeleteItem", "BatchExecuteStatement"})
# Each backend with the delete path it verifies: moto's PartiQL DELETE ignores its
# predicates, so the batch path is proven on AWS's own DynamoDB Local only.
BACKENDS = {"moto": "item", "dynamodb-local": "batch"}
DELETE_CALL = {"item": "DeleteItem", "batch": "BatchExecuteStatement"}
# Derandomized: the same examples on every run, so a mutant is killed or not, reproducibly.
# scripts/mutants.py needs no minimal failing example: it skips shrinking.
EXAMPLES = settings(
    derandomize=True,
    phases=[Phase.explicit, Phase.generate] if os.environ.get("SCAVENGER_MUTANTS") else list(Phase),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Killed(BaseException):
    """Lambda's timeout: the invocation was still running at its deadline."""


# -- set-up -----------------------------------------------------------------------------


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """moto (item path) unless a test is parametrized with ``dynamodb-local`` (batch)."""
    name: str = getattr(request, "param", "moto")
    if name == "dynamodb-local":
        request.getfixturevalue("dynamodb_local")
    return name


@pytest.fixture
def stack(backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with fresh_stack(monkeypatch, backend) as resources:
        yield resources


@contextmanager
def fresh_stack(monkeypatch: pytest.MonkeyPatch, backend: str = "moto") -> Iterator[Stack]:
    """The ``stack`` fixture's resources in a moto of their own (one per hypothesis
    example), with fresh cached clients so no earlier example's hooks remain. On
    DynamoDB Local, moto passes DynamoDB calls through and holds SQS; its tables
    are dropped first."""
    if backend == "dynamodb-local":
        drop_tables(os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    with moto_stack(monkeypatch) as resources:
        yield resources


def seed(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    *,
    count: int,
    page_size: int,
    rng: random.Random | None = None,
    **sweep: Any,
) -> Truth:
    sweep = {**SWEEP, **sweep}
    return seed_sweep(stack, monkeypatch, sweep, count=count, page_size=page_size, rng=rng)


@pytest.fixture
def seeded(stack: Stack, backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Truth:
    """120 items over 3 segments, pages of 7; no scavenger.toml in the working directory."""
    monkeypatch.chdir(tmp_path)
    return seed(stack, monkeypatch, count=120, page_size=7, delete_mode=BACKENDS[backend])


def assert_exact(stack: Stack, truth: Truth, run_id: str) -> None:
    run = ledger(stack).get_run(run_id)
    assert run is not None and run.status == "done"
    assert remaining_keys(stack.dynamodb, TABLE) == truth.kept
    assert run.totals is not None
    assert (run.totals.scanned, run.totals.expired) == (truth.total, len(truth.doomed))
    assert (run.totals.deleted, run.totals.skipped) == (len(truth.doomed), 0)
    assert run.totals.unparseable == truth.unparseable


def assert_run_complete(stack: Stack, truth: Truth, run_id: str) -> None:
    """The run finished, every expired item is gone, nothing is left in either queue.
    (Counters are invariant 4's: a crash between a delete and its checkpoint leaves
    that delete uncounted, so crash tests do not compare them.)"""
    run = ledger(stack).get_run(run_id)
    assert run is not None and run.status == "done"
    assert all(state.status == "done" for state in ledger(stack).list_segments(run_id))
    assert remaining_keys(stack.dynamodb, TABLE) == truth.kept
    assert queue_size(stack, stack.queue_url) == queue_size(stack, stack.dlq_url) == 0


def keys_in_segment(stack: Stack, segment: int) -> set[tuple[Any, ...]]:
    """The keys the parallel scan puts in ``segment`` (the emulator's own split)."""
    keys: set[tuple[Any, ...]] = set()
    kwargs: dict[str, Any] = {"TableName": TABLE, "Segment": segment, "TotalSegments": SEGMENTS}
    while True:
        page = stack.dynamodb.scan(**kwargs)
        keys |= {
            key_id({"WorkerId": i["WorkerId"], "StartTime": i["StartTime"]}) for i in page["Items"]
        }
        if "LastEvaluatedKey" not in page:
            return keys
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def receive(stack: Stack, count: int = 10) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=count, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    return messages


def settle(stack: Stack, messages: list[dict[str, Any]], response: dict[str, Any] | None) -> None:
    """What the event source does after an invocation: delete what succeeded, make the
    rest visible again at once (``None``: the invocation died, every record comes back)."""
    failed = (
        {m["MessageId"] for m in messages}
        if response is None
        else {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    )
    settle_records(stack, messages, failed)


def drive(
    stack: Stack,
    context_factory: Callable[[], Any],
    *,
    before_each: Callable[[list[dict[str, Any]]], None] = lambda batch: None,
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = worker_handler,
    max_invocations: int = 400,
) -> int:
    """Play the event source until the queue is empty. An invocation that crashes
    (``Crash``) is a dead process: all its records come back. Returns invocations."""
    for invocation in range(max_invocations):
        batch = receive(stack)
        if not batch:
            if queue_size(stack, stack.queue_url) == 0:
                return invocation
            continue
        before_each(batch)
        try:
            response: dict[str, Any] | None = handler(
                sqs_event(batch, stack.queue_arn), context_factory()
            )
        except Crash:
            response = None
        settle(stack, batch, response)
    raise AssertionError(f"queue did not drain within {max_invocations} invocations")


def queued_bodies(url: str) -> list[dict[str, Any]]:
    """Every message the emulator holds for ``url``: visible, in flight or delayed (the
    test looks inside moto, since SQS cannot list a queue without receiving it)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[urlparse(url).path.rsplit("/", 1)[1]]
    bodies = []
    for message in queue._messages:
        try:
            bodies.append(json.loads(message.body))
        except ValueError:
            bodies.append({})
    return bodies


def assert_no_segment_lost(stack: Stack, run_id: str) -> None:
    """Invariant 3 as a check: every segment is done in the ledger, halted in it (with
    its cursor: `requeue --halted` resumes it), or a message that will move it on
    (hop >= the ledger's; an older one is dropped as stale) is in the queue (visible or
    in flight) or in the DLQ."""
    messages = queued_bodies(stack.queue_url) + queued_bodies(stack.dlq_url)
    for state in ledger(stack).list_segments(run_id):
        if state.status in ("done", "halted"):
            continue
        live = [
            body["hop"]
            for body in messages
            if body.get("run_id") == run_id
            and body.get("segment") == state.segment
            and body.get("hop", -1) >= state.hop
        ]
        assert live, (
            f"segment {state.segment} is lost: {state.status} at hop {state.hop} in the "
            f"ledger, no message for it in the queue or the DLQ ({state.last_error})"
        )


def drive_to_completion(stack: Stack, context_factory: Callable[[], Any], **options: Any) -> None:
    """Drain, redrive whatever reached the DLQ, and drain again, until both are empty."""
    for _ in range(5):
        drive(stack, context_factory, **options)
        if queue_size(stack, stack.dlq_url) == 0:
            return
        assert cli_main(["redrive"]) == 0
    raise AssertionError("the DLQ kept filling up")


def parse_age(value: dict[str, Any] | None) -> datetime | None:
    """The test's own reading of an iso8601 age (independent of scavenger.expiry)."""
    if not value or not isinstance(value.get("S"), str):
        return None
    try:
        instant = datetime.fromisoformat(value["S"].replace("Z", "+00:00"))
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def is_expired(item: dict[str, Any] | None, cutoff: datetime) -> bool:
    if item is None:
        return False
    age = parse_age(item.get("ts"))
    return age is not None and age < cutoff and item.get("Completed") in ({"N": "1"}, {"S": "1"})


# -- invariant 1 --------------------------------------------------------------------------

# What a concurrent writer may do to an item between the worker's scan and its delete.
ADVERSARY = {
    "leave": None,
    "refresh": lambda item, cutoff: {**item, "ts": {"S": (cutoff + timedelta(days=1)).isoformat()}},
    "move_to_the_cutoff": lambda item, cutoff: {
        **item,
        "ts": {"S": cutoff.astimezone(timezone(timedelta(hours=-3))).isoformat()},
    },
    "unmatch_where": lambda item, cutoff: {**item, "Completed": {"N": "0"}},
    "garble_age": lambda item, cutoff: {**item, "ts": {"S": "not a date"}},
    "drop_age": lambda item, cutoff: {k: v for k, v in item.items() if k != "ts"},
    "remove": lambda item, cutoff: None,
    "same_instant_other_form": lambda item, cutoff: same_instant_other_form(item),
}


def same_instant_other_form(item: dict[str, Any]) -> dict[str, Any]:
    """Rewritten, still expired (the delete may then skip it, never delete it wrongly)."""
    age = parse_age(item.get("ts"))
    if age is None:
        return item
    return {**item, "ts": {"S": age.astimezone(timezone(timedelta(hours=9))).isoformat()}}


def deleted_keys(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The keys a DeleteItem or a BatchExecuteStatement (its statements' first two
    parameters: WorkerId, StartTime) is about to delete."""
    if "Key" in params:
        return [params["Key"]]
    return [
        {"WorkerId": statement["Parameters"][0], "StartTime": statement["Parameters"][1]}
        for statement in params["Statements"]
    ]


def deleted_flags(parsed: dict[str, Any]) -> list[bool]:
    """Which of the call's deletes took effect (a whole-call error: none)."""
    if "Error" in parsed:
        return []
    if "Responses" not in parsed:
        return [True]
    return ["Item" in answer and "Error" not in answer for answer in parsed["Responses"]]


@pytest.mark.parametrize("backend", sorted(BACKENDS), indirect=True)
@settings(EXAMPLES, max_examples=10)
@given(
    data=st.data(),
    table_seed=st.integers(0, 2**16),
    page_size=st.integers(1, 9),
    throttle=st.sampled_from([0.0, 0.25]),
)
def test_invariant_1_never_deletes_an_item_that_is_not_expired_at_delete_time(
    monkeypatch, tmp_path, backend, data, table_seed, page_size, throttle
):
    """A writer races every delete (hypothesis picks what it does to the item: refresh
    it, flip the ``where`` attribute, garble or drop the age, delete it, rewrite the
    same instant), deletes are throttled (on the batch path: whole calls and single
    statements), and items sit exactly at the cutoff. The state of each item at the
    instant its delete succeeds must be expired."""
    monkeypatch.chdir(tmp_path)
    mode = BACKENDS[backend]
    operation = DELETE_CALL[mode]
    with fresh_stack(monkeypatch, backend) as stack:
        truth = seed(
            stack,
            monkeypatch,
            count=30,
            page_size=page_size,
            rng=random.Random(table_seed),
            delete_mode=mode,
        )
        run_id = start_run()
        run = ledger(stack).get_run(run_id)
        assert run is not None
        cutoff = parse_age({"S": run.cutoff})
        assert cutoff is not None
        # Not expired: exactly at the cutoff, in three spellings of that instant.
        boundary = {}
        for index, offset in enumerate((0, 330, -480)):
            key = make_key(SHAPE, 10_000 + index)
            spelled = cutoff.astimezone(timezone(timedelta(minutes=offset))).isoformat()
            boundary[key_id(key)] = key
            stack.dynamodb.put_item(
                TableName=TABLE,
                Item={**key, "ts": {"S": spelled.replace("+00:00", "Z")}, "Completed": {"N": "1"}},
            )

        client = aws.client("dynamodb")
        if throttle:
            ErrorInjector(client, operation, rate=throttle, seed=table_seed)
            if mode == "batch":
                StatementFaults(client, rate=throttle, seed=table_seed)
        at_delete: list[list[dict[str, Any] | None]] = []
        wrongly_deleted: list[str] = []

        def race(params: dict[str, Any]) -> None:
            for key in deleted_keys(params):
                if key_id(key) in boundary:
                    continue
                action = data.draw(st.sampled_from(sorted(ADVERSARY)), label="writer")
                change = ADVERSARY[action]
                if change is None:
                    continue
                current = stack.dynamodb.get_item(
                    TableName=TABLE, Key=key, ConsistentRead=True
                ).get("Item")
                if current is None:
                    continue
                changed = change(current, cutoff)
                if changed is None:
                    stack.dynamodb.delete_item(TableName=TABLE, Key=key)
                else:
                    stack.dynamodb.put_item(TableName=TABLE, Item=changed)

        def look(params: dict[str, Any]) -> None:
            at_delete.append(
                [
                    stack.dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get(
                        "Item"
                    )
                    for key in deleted_keys(params)
                ]
            )

        def judge(parsed: dict[str, Any], **_: Any) -> None:
            states = at_delete.pop()
            for item, deleted in zip(states, deleted_flags(parsed), strict=False):
                if deleted and not is_expired(item, cutoff):
                    wrongly_deleted.append(json.dumps(item))

        on_call(client, operation, race)
        on_call(client, operation, look)  # after the writer: the state the delete meets
        client.meta.events.register(f"after-call.dynamodb.{operation}", judge)

        drive_to_completion(stack, roomy_context)

        assert wrongly_deleted == []
        left = remaining_keys(stack.dynamodb, TABLE)
        assert truth.kept | set(boundary) <= left
        finished = ledger(stack).get_run(run_id)
        assert finished is not None and finished.status == "done"


# -- invariant 2 --------------------------------------------------------------------------


class FailingSegment:
    """Refuses the worker's scans of one segment while ``failing``, with a fatal error of
    that segment's own (a ValidationException naming no expression: it does not halt)."""

    def __init__(self, segment: int):
        self.segment = segment
        self.failing = True
        aws.client("dynamodb").meta.events.register("before-call.dynamodb.Scan", self.on_scan)

    def on_scan(self, params: dict[str, Any], **_: Any) -> Any:
        body = json.loads(params["body"])
        if self.failing and body.get("TableName") == TABLE and body.get("Segment") == self.segment:
            return error_response("ValidationException", 400)
        return None


@pytest.mark.parametrize("backend", sorted(BACKENDS), indirect=True)
@pytest.mark.parametrize("finish_with", ["redrive", "requeue"])
def test_invariant_2_every_item_expired_for_the_whole_run_is_deleted_by_the_runs_end(
    stack, backend, seeded, finish_with
):
    """Short deadlines cut pages and force continuations, one delete is throttled until
    its retries run out, scans fail with 500s, and segment 1 fails until it lands in the
    DLQ. Every expired item outside segment 1 is gone when the queue drains; once the
    operator redrives (or requeues) segment 1, every expired item is gone."""
    run_id = start_run()
    clock = FakeClock()
    client = aws.client("dynamodb")
    tick_per_call(client, lambda: clock.advance(0.2))
    operation = DELETE_CALL[BACKENDS[backend]]
    exhausted = ErrorInjector(client, operation, rate=1.0, limit=12)  # > 10 attempts
    if operation == "BatchExecuteStatement":  # and single statements, sent again alone
        StatementFaults(client, rate=0.2, seed=5)
    ErrorInjector(client, "Scan", rate=0.2, seed=3, code="InternalServerError", status=500)
    in_dlq = FailingSegment(1)
    context = lambda: FakeContext(clock, timeout_seconds=7)  # noqa: E731

    drive(stack, context)

    assert exhausted.injected == 12
    assert queue_size(stack, stack.dlq_url) == 1
    left = remaining_keys(stack.dynamodb, TABLE)
    doomed_in_dlq = seeded.doomed & keys_in_segment(stack, 1)
    assert doomed_in_dlq and left == seeded.kept | doomed_in_dlq
    assert ledger(stack).get_run(run_id).status == "running"

    in_dlq.failing = False
    if finish_with == "redrive":
        assert cli_main(["redrive"]) == 0
    else:
        assert cli_main(["requeue", run_id, "--segment", "1"]) == 0
    drive(stack, context)

    assert_exact(stack, seeded, run_id)


# -- invariant 3 --------------------------------------------------------------------------


def crash_on(
    service: str, event: str, when: Callable[[], bool] = lambda: True
) -> Callable[[], bool]:
    """Kill the process once, at the first ``event`` call for which ``when()`` holds;
    returns whether it has."""
    state = {"done": False}

    def hook(**_: Any) -> None:
        if not state["done"] and when():
            state["done"] = True
            raise Crash(event)

    aws.client(service).meta.events.register(event, hook)
    return lambda: state["done"]


def after(service: str, operation: str) -> Callable[[], bool]:
    """True once the worker has made an ``operation`` call."""
    seen = {"count": 0}
    aws.client(service).meta.events.register(
        f"after-call.{service}.{operation}", lambda **_: seen.update(count=seen["count"] + 1)
    )
    return lambda: seen["count"] > 0


def refuse_once(service: str, operation: str, code: str) -> Callable[[], bool]:
    injector = ErrorInjector(aws.client(service), operation, rate=1.0, code=code, limit=1)
    return lambda: injector.injected == 1


WORKER_FAULTS: dict[str, Callable[[], Callable[[], bool]]] = {
    "dies before its continuation is sent": lambda: crash_on("sqs", "before-call.sqs.SendMessage"),
    "dies after sending its continuation, before raising the hop": lambda: crash_on(
        "dynamodb", "before-call.dynamodb.UpdateItem", after("sqs", "SendMessage")
    ),
    "dies between a delete and its checkpoint": lambda: crash_on(
        "dynamodb", "before-call.dynamodb.UpdateItem", after("dynamodb", "DeleteItem")
    ),
    "cannot send its continuation (AccessDenied)": lambda: refuse_once(
        "sqs", "SendMessage", "AccessDenied"
    ),
    "meets a fatal error of its own (ValidationException on Scan)": lambda: refuse_once(
        "dynamodb", "Scan", "ValidationException"
    ),
}


@pytest.mark.parametrize("fault", [*WORKER_FAULTS, "is reached too late for its records"])
def test_invariant_3_no_message_is_lost_when_a_worker_fails_between_steps(stack, seeded, fault):
    """Before every invocation and at the end, every segment is done, in flight or in
    the DLQ (with a hop the ledger will accept), whatever the worker died or failed at."""
    run_id = start_run()
    clock = FakeClock()
    tick_per_call(aws.client("dynamodb"), lambda: clock.advance(0.2))
    too_late = fault == "is reached too late for its records"
    timeouts = iter([1.0] if too_late else [])  # below the margin: records handed back
    fired = WORKER_FAULTS[fault]() if not too_late else lambda: True

    def context() -> FakeContext:
        return FakeContext(clock, timeout_seconds=next(timeouts, 7))

    drive_to_completion(
        stack, context, before_each=lambda batch: assert_no_segment_lost(stack, run_id)
    )

    assert fired()
    assert_no_segment_lost(stack, run_id)
    assert_run_complete(stack, seeded, run_id)


@pytest.mark.parametrize("dies_at", ["SendMessage", "DeleteMessage"])
def test_invariant_3_redrive_loses_no_message_when_it_dies_between_send_and_delete(
    stack, seeded, dies_at, monkeypatch
):
    """Redrive sends before it deletes: killed at either call, the segment's message is
    still in the queue or the DLQ, and running redrive again finishes the run."""
    run_id = start_run()
    in_dlq = FailingSegment(1)
    drive(stack, roomy_context)
    assert queue_size(stack, stack.dlq_url) == 1
    in_dlq.failing = False
    monkeypatch.setattr(dlq_module, "REDRIVE_VISIBILITY_SECONDS", 1)
    crash_on("sqs", f"before-call.sqs.{dies_at}")

    with pytest.raises(Crash):
        cli_main(["redrive"])

    assert_no_segment_lost(stack, run_id)
    time.sleep(1.1)  # the dead redrive's hold on the DLQ message runs out (SQS's clock)
    drive_to_completion(
        stack, roomy_context, before_each=lambda batch: assert_no_segment_lost(stack, run_id)
    )
    assert_run_complete(stack, seeded, run_id)


@pytest.mark.parametrize("dies", [False, True], ids=["", "dies-between-run-and-segment"])
def test_invariant_3_a_systemic_error_halts_the_run_and_requeue_halted_resumes_it(
    stack, seeded, dies
):
    """After two pages, every data call on the swept table is refused (AccessDenied, a
    role without its grants). The run is halted with that first error after one refused
    call, none per segment after it; no record fails, nothing reaches the DLQ, every
    segment is halted with its cursor (also when the halter dies between halting the
    run and its segment). Once the grant is back, `requeue --halted` finishes the run
    with nothing wrongly deleted and nothing missed."""
    run_id = start_run()
    refusal = RefuseTable(aws.client("dynamodb"), TABLE, after_scans=2)
    if dies:
        crash_on(
            "dynamodb",
            "before-call.dynamodb.UpdateItem",
            lambda: ledger(stack).get_run(run_id).status == "halted",  # type: ignore[union-attr]
        )
    failures: list[Any] = []

    def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = worker_handler(event, context)
        failures.extend(response["batchItemFailures"])
        return response

    drive(
        stack,
        roomy_context,
        before_each=lambda batch: assert_no_segment_lost(stack, run_id),
        handler=worker,
    )

    run = ledger(stack).get_run(run_id)
    assert run is not None and run.status == "halted" and run.halt is not None
    assert (run.halt.code, run.halt.resource) == ("AccessDeniedException", TABLE)
    assert (run.halt.call, run.halt.segment) == refusal.refused[0]
    assert "injected" in run.halt.message
    assert len(refusal.refused) == 1 and failures == []
    assert queue_size(stack, stack.queue_url) == queue_size(stack, stack.dlq_url) == 0
    halted = {state.segment: state for state in ledger(stack).list_segments(run_id)}
    for state in halted.values():
        assert state.status == "halted" and "AccessDeniedException" in (state.last_error or "")
        # The halter keeps its two pages; the others never scanned.
        expected = 2 if state.segment == run.halt.segment else 0
        assert state.checkpoints == expected and (state.cursor is None) == (expected == 0)
    assert_no_segment_lost(stack, run_id)
    (refused_plan,) = planner_handler({"sweep": "sweep"}, roomy_context())["runs"]
    assert refused_plan["started"] is False and f"run {run_id} is halted" in refused_plan["reason"]

    refusal.refusing = False
    starts: dict[int, list[Any]] = {}

    def note_start(params: dict[str, Any]) -> None:
        if params.get("TableName") == TABLE:
            starts.setdefault(params["Segment"], []).append(params.get("ExclusiveStartKey"))

    on_call(aws.client("dynamodb"), "Scan", note_start)
    requeuer = Requeuer(ledger(stack), SegmentQueue(stack.sqs, stack.queue_url), None)
    report = requeuer.execute(*requeuer.decide_halted(run_id))
    assert report.ok and report.resumed_run and len(report.outcomes) == SEGMENTS
    drive(stack, roomy_context, before_each=lambda batch: assert_no_segment_lost(stack, run_id))

    assert_exact(stack, seeded, run_id)
    assert {segment: scans[0] for segment, scans in starts.items()} == {
        segment: state.cursor for segment, state in halted.items()
    }  # each resumed at its checkpoint
    finished = ledger(stack).get_run(run_id)
    assert finished is not None and finished.halt is None and finished.last_halt == run.halt


# -- invariant 4 --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", sorted(BACKENDS), indirect=True)
def test_invariant_4_one_worker_per_segment_and_duplicates_are_not_recounted(
    stack, backend, seeded
):
    """A worker dies after its first checkpoint (the ledger's cursor is now ahead of its
    message's); a second worker overtakes the first mid-page on the same message; and
    after every invocation every message delivered so far is delivered again. Every
    message of a segment is in that segment's FIFO group, a stale or finished duplicate
    is dropped before it scans anything, and every counter is exact per segment."""
    segments = {segment: keys_in_segment(stack, segment) for segment in range(SEGMENTS)}
    run_id = start_run()
    clock = FakeClock()
    client = aws.client("dynamodb")
    tick_per_call(client, lambda: clock.advance(0.2))

    def context() -> FakeContext:
        return FakeContext(clock, timeout_seconds=12)

    # 1. Segment 2's worker dies after its first checkpoint, as it starts its second
    #    page; its message (cursor: the start) comes back behind the ledger's cursor.
    checkpoints = {"count": 0}

    def count_checkpoints(params: dict[str, Any]) -> None:
        if params.get("UpdateExpression", "").startswith("SET #cursor"):
            checkpoints["count"] += 1

    def die_on_second_page(params: dict[str, Any]) -> None:
        if checkpoints["count"] == 1 and params.get("TableName") == TABLE:
            checkpoints["count"] += 1
            raise Crash("second page")

    on_call(client, "UpdateItem", count_checkpoints)
    on_call(client, "Scan", die_on_second_page)
    batch = receive(stack)
    (third,) = [m for m in batch if json.loads(m["Body"])["segment"] == 2]
    with pytest.raises(Crash):
        worker_handler(sqs_event([third], stack.queue_arn), FakeContext(clock, 900))
    settle(stack, batch, None)
    state = ledger(stack).get_segment(run_id, 2)
    assert state is not None and state.checkpoints == 1 and state.cursor is not None

    # 2. Segment 0's first worker is overtaken on its first delete.
    data_calls: list[str] = []
    for operation in DATA_OPERATIONS:
        client.meta.events.register(
            f"before-call.dynamodb.{operation}", lambda model, **_: data_calls.append(model.name)
        )
    overtaken: dict[str, Any] = {"record": None, "done": False}

    def overtake(params: dict[str, Any]) -> None:
        if overtaken["record"] is None or overtaken["done"]:
            return
        overtaken["done"] = True
        response = worker_handler(sqs_event([overtaken["record"]], stack.queue_arn), context())
        assert response == {"batchItemFailures": []}

    on_call(client, DELETE_CALL[BACKENDS[backend]], overtake)
    if BACKENDS[backend] == "batch":  # single statements fail and are sent again alone
        StatementFaults(client, rate=0.2, seed=9)

    # 3. Every delivery is replayed after every invocation; stale ones must not scan.
    history: list[dict[str, Any]] = []
    groups: list[tuple[str, int]] = []

    def deliver_overtaken_and_replay(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        for record in event["Records"]:
            body = json.loads(record["body"])
            groups.append((record["attributes"]["MessageGroupId"], body["segment"]))
            if body["segment"] == 0 and overtaken["record"] is None:
                overtaken["record"] = {
                    "MessageId": "overtaker",
                    "ReceiptHandle": "x",
                    "Body": record["body"],
                    "Attributes": record["attributes"],
                }
        response = worker_handler(event, ctx)
        history.extend(json.loads(record["body"]) for record in event["Records"])
        for index, body in enumerate(history):
            before = ledger(stack).get_segment(run_id, body["segment"])
            assert before is not None
            stale = before.status == "done" or body["hop"] < before.hop
            data_calls.clear()
            record = {
                "MessageId": f"again-{index}",
                "ReceiptHandle": "x",
                "Body": json.dumps(body),
                "Attributes": {"MessageGroupId": f"sweep#{body['segment']}"},
            }
            again = worker_handler(sqs_event([record], stack.queue_arn), context())
            assert again == {"batchItemFailures": []}
            if stale:
                assert data_calls == [], f"a stale duplicate {body} was swept again"
        return response

    drive(stack, context, handler=deliver_overtaken_and_replay)

    assert overtaken["done"] and any(body["hop"] > 0 for body in history)
    assert all(group == f"sweep#{segment}" for group, segment in groups)
    assert_exact(stack, seeded, run_id)
    for state in ledger(stack).list_segments(run_id):
        members = segments[state.segment]
        assert state.counts.scanned == len(members), f"segment {state.segment}"
        assert state.counts.deleted == len(members & seeded.doomed), f"segment {state.segment}"


@pytest.mark.parametrize("backend", sorted(BACKENDS), indirect=True)
def test_invariant_4_an_item_someone_else_deleted_is_counted_as_skipped_not_deleted(
    stack, backend, seeded
):
    """Another deleter removes expired items just before the worker's delete reaches
    them: the worker did not delete them, so they are skipped, never counted deleted
    (on the batch path: a statement that returns no old item)."""
    run_id = start_run()
    client = aws.client("dynamodb")
    taken: set[tuple[Any, ...]] = set()

    def delete_first(params: dict[str, Any]) -> None:
        for key in deleted_keys(params)[:2]:
            if len(taken) < 4 and key_id(key) not in taken:
                taken.add(key_id(key))
                stack.dynamodb.delete_item(TableName=TABLE, Key=key)

    on_call(client, DELETE_CALL[BACKENDS[backend]], delete_first)

    drive_to_completion(stack, roomy_context)

    assert len(taken) == 4
    run = ledger(stack).get_run(run_id)
    assert run is not None and run.status == "done" and run.totals is not None
    assert remaining_keys(stack.dynamodb, TABLE) == seeded.kept
    assert run.totals.deleted == len(seeded.doomed) - len(taken)
    assert run.totals.skipped == len(taken)


# -- invariant 5 --------------------------------------------------------------------------


class SlowService:
    """Every call of the worker's clients takes time on the fake clock, data-plane calls
    are throttled at ``throttle`` (without mercy), and an invocation still running at its
    deadline is killed, as Lambda would."""

    def __init__(self, clock: FakeClock, data: float, control: float, throttle: float):
        self.clock = clock
        self.data = data
        self.control = control
        self.throttle = throttle
        self.random = random.Random(7)
        self.deadline = math.inf
        for service in ("dynamodb", "sqs"):
            aws.client(service).meta.events.register(f"before-call.{service}", self.on_call)

    def on_call(self, model: Any, **_: Any) -> Any:
        data_plane = model.name in DATA_OPERATIONS
        self.clock.advance(self.data if data_plane else self.control)
        if self.clock() > self.deadline:
            raise Killed(f"{model.name} ended {self.clock() - self.deadline:.3f} s late")
        if data_plane and self.random.random() < self.throttle:
            return error_response("ProvisionedThroughputExceededException", 400)
        return None


@pytest.mark.parametrize("backend", sorted(BACKENDS), indirect=True)
@settings(EXAMPLES, max_examples=12)
@given(
    timeout=st.one_of(st.floats(0.05, 2 * MARGIN), st.floats(2 * MARGIN, 12.0)),
    batch=st.integers(1, SEGMENTS),
    data=st.sampled_from([0.05, 0.3, 0.6]),
    control=st.sampled_from([0.0, 0.05, 0.1]),
    throttle=st.sampled_from([0.0, 0.3, 0.9]),
    deletes_per_second=st.sampled_from([0, 0.5, 4]),
    page_size=st.integers(1, 9),
)
@example(
    timeout=4.0, batch=1, data=0.3, control=0.05, throttle=0.0, deletes_per_second=0, page_size=5
)  # the margin is what keeps the last checkpoint inside the deadline
@example(
    timeout=0.15, batch=1, data=0.3, control=0.05, throttle=0.0, deletes_per_second=0, page_size=5
)  # a record reached with less than the margin left is handed back
@example(
    timeout=6.0, batch=1, data=0.05, control=0.05, throttle=0.9, deletes_per_second=0, page_size=5
)  # retries stop, and never sleep, past the margin
@example(
    timeout=6.0, batch=1, data=0.05, control=0.0, throttle=0.0, deletes_per_second=0.5, page_size=9
)  # the pacer never sleeps into the margin
@example(
    timeout=9.0, batch=3, data=0.3, control=0.05, throttle=0.3, deletes_per_second=0, page_size=7
)  # each record of a batch keeps its own margin
def test_invariant_5_a_worker_never_runs_into_its_timeout_it_continues_instead(
    monkeypatch,
    tmp_path,
    backend,
    timeout,
    batch,
    data,
    control,
    throttle,
    deletes_per_second,
    page_size,
):
    """Slow and throttled calls, pacing and batches against short deadlines, on a fake
    clock: no call ends after an invocation's deadline and the handler returns before
    it. With time enough for the batch's margins, no record fails: a worker low on
    time checkpoints and continues in a new message instead."""
    monkeypatch.chdir(tmp_path)
    with fresh_stack(monkeypatch, backend) as stack:
        seed(
            stack,
            monkeypatch,
            count=30,
            page_size=page_size,
            segments=SEGMENTS,
            deletes_per_second=deletes_per_second,
            delete_mode=BACKENDS[backend],
        )
        run_id = start_run()
        clock = FakeClock()
        lambda_runtime().sleep = clock.advance
        service = SlowService(clock, data, control, throttle)
        continued = 0
        for _ in range(6):
            messages = receive(stack, batch)
            if not messages:
                break
            context = FakeContext(clock, timeout_seconds=timeout)
            service.deadline = context.started + timeout
            try:
                response = worker_handler(sqs_event(messages, stack.queue_arn), context)
            except Killed as killed:
                pytest.fail(f"invocation of {len(messages)} record(s) timed out: {killed}")
            assert clock() <= service.deadline, "the handler returned after its deadline"
            service.deadline = math.inf
            if timeout >= len(messages) * MARGIN + 0.5:
                assert response == {"batchItemFailures": []}
            settle(stack, messages, response)
            continued += sum(1 for body in queued_bodies(stack.queue_url) if body["hop"] > 0)
        if timeout >= SEGMENTS * MARGIN + 0.5 and data >= 0.3:
            assert continued or ledger(stack).get_run(run_id).status == "done"
