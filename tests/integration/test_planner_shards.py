"""A planner past its shard threshold fans out in plan-shard messages that workers
turn into segment items and segment messages; end to end on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scavenger.errors import FatalError
from scavenger.ledger import Ledger
from scavenger.message import PlanShardMessage, SegmentMessage
from scavenger.plan import Planner, plan_shard
from scavenger.queue import SegmentQueue, SendFailed
from scavenger.runtime import lambda_runtime
from tests.conftest import LEDGER, configure_sweeps, drain, roomy_context
from tests.dataset import now, remaining_keys
from tests.faults import ErrorInjector
from tests.runs import no_waits, seed_sweep
from tests.sweeps import sweep_spec

pytestmark = pytest.mark.integration

SWEEP = sweep_spec(segments=7, completed=True)


@pytest.fixture
def seeded(stack, monkeypatch):
    truth = seed_sweep(stack, monkeypatch, SWEEP, count=150, page_size=10)
    no_waits()
    return truth


def planner(stack, clock=lambda: datetime.now(UTC)) -> Planner:
    return Planner(
        ledger=Ledger(stack.dynamodb, LEDGER),
        queue=SegmentQueue(stack.sqs, stack.queue_url),
        dynamodb=stack.dynamodb,
        clock=clock,
        shard_threshold=3,
        shard_segments=3,
    )


def queued_bodies(stack) -> list[str]:
    bodies = []
    while True:
        got = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)
        if not got.get("Messages"):
            return bodies
        bodies += [message["Body"] for message in got["Messages"]]


def test_a_run_past_the_threshold_is_planned_in_shards_and_swept_exactly(stack, seeded):
    sweep = lambda_runtime().sweep("sweep")

    result = planner(stack).plan(sweep)

    assert result.started and (result.segments, result.shards) == (7, 3)
    ledger = Ledger(stack.dynamodb, LEDGER)
    assert ledger.list_segments(result.run_id) == []  # the shards write them
    assert [
        (first, count) for first, count, _ in ledger.planning.pending_shards(result.run_id)
    ] == [
        (0, 3),
        (3, 3),
        (6, 1),
    ]

    drained = drain(stack, context_factory=roomy_context)

    assert drained.failures == 0
    assert sorted(set(drained.groups))[:3] == ["sweep#0", "sweep#1", "sweep#2"]
    assert {"sweep#plan-0", "sweep#plan-3", "sweep#plan-6"} <= set(drained.groups)
    assert ledger.planning.pending_shards(result.run_id) == []
    run = ledger.get_run(result.run_id)
    assert (run.status, run.segments_done) == ("done", 7)
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept
    assert run.totals.deleted == len(seeded.doomed)
    assert sorted(s.segment for s in ledger.list_segments(result.run_id)) == list(range(7))


def test_a_run_at_the_threshold_is_planned_as_before(stack, seeded, monkeypatch):
    configure_sweeps(monkeypatch, SWEEP | {"segments": 3})

    result = planner(stack).plan(lambda_runtime().sweep("sweep"))

    assert (result.segments, result.shards) == (3, 0)
    assert len(Ledger(stack.dynamodb, LEDGER).list_segments(result.run_id)) == 3
    assert all(SegmentMessage.parse(body) for body in queued_bodies(stack))


def test_a_shard_planned_twice_writes_and_counts_nothing_twice(stack, seeded):
    """A redelivered shard message after its first delivery got part-way (a segment
    already swept): only what is missing is written; the swept segment is not reset."""
    result = planner(stack).plan(lambda_runtime().sweep("sweep"))
    (shard, *_) = [
        m for m in map(PlanShardMessage.parse_if_shard, queued_bodies(stack)) if m and m.first == 0
    ]
    ledger = Ledger(stack.dynamodb, LEDGER)
    queue = SegmentQueue(stack.sqs, stack.queue_url)
    ledger.planning.create_segments(result.run_id, [0, 1])  # the first delivery died here
    ledger.checkpoint(
        result.run_id, 1, hop=0, checkpoints=0, cursor=None, counts=_counts(), done=True
    )

    sent = plan_shard(shard, ledger, queue)

    assert sent == 2  # segment 0 (written, never sent) and 2 (missing); not 1 (done)
    assert ledger.get_segment(result.run_id, 1).status == "done"
    assert ledger.get_run(result.run_id).segments_done == 1
    assert ledger.planning.pending_shards(result.run_id)[0][0] == 3  # shard 0 is planned
    assert sorted(SegmentMessage.parse(b).segment for b in queued_bodies(stack)) == [0, 2]


def test_shards_whose_message_was_lost_are_sent_by_the_next_planner(stack, seeded):
    """The planner could not send its shard messages: the run exists with its shards
    pending; the sweep's next planner invocation, past the resend delay, sends them."""
    sweep = lambda_runtime().sweep("sweep")
    ErrorInjector(stack.sqs, "SendMessageBatch", rate=1.0, code="AccessDenied", limit=1)
    with pytest.raises(SendFailed) as failure:
        planner(stack).plan(sweep)
    assert "next `scavenger plan` sends them" in str(failure.value)
    later = datetime.now(UTC) + timedelta(minutes=16)

    again = planner(stack, clock=lambda: later).plan(sweep)

    assert not again.started and "sent its 3 shards" in again.reason
    drain(stack, context_factory=roomy_context)
    run = Ledger(stack.dynamodb, LEDGER).get_run(again.run_id)
    assert (run.status, run.segments_done) == ("done", 7)
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept


def test_every_segment_message_of_a_sharded_run_carries_its_budget_share(
    stack, seeded, monkeypatch
):
    """70 write units/s over the run's 7 segments: 10 each, whether the planner sends
    the segment messages itself or its shards do, and when a lost shard is sent again."""
    configure_sweeps(monkeypatch, SWEEP | {"max_write_units_per_second": 70})
    sweep = lambda_runtime().sweep("sweep")
    ErrorInjector(stack.sqs, "SendMessageBatch", rate=1.0, code="AccessDenied", limit=1)
    with pytest.raises(SendFailed):
        planner(stack).plan(sweep)  # the shards stay pending
    later = datetime.now(UTC) + timedelta(minutes=16)
    again = planner(stack, clock=lambda: later).plan(sweep)
    shards = [PlanShardMessage.parse_if_shard(body) for body in queued_bodies(stack)]
    assert len(shards) == 3 and {shard.wcu for shard in shards} == {10.0}
    ledger = Ledger(stack.dynamodb, LEDGER)
    queue = SegmentQueue(stack.sqs, stack.queue_url)

    for shard in shards:
        plan_shard(shard, ledger, queue)

    messages = [SegmentMessage.parse(body) for body in queued_bodies(stack)]
    assert sorted(m.segment for m in messages) == list(range(7))
    assert {m.wcu for m in messages} == {10.0}
    assert again.run_id == shards[0].run_id


def test_a_shard_of_a_run_not_in_the_ledger_fails(stack, seeded):
    shard = PlanShardMessage("gone", "sweep", "Swept", 7, now(), False, 0, 3)

    with pytest.raises(FatalError):
        plan_shard(shard, Ledger(stack.dynamodb, LEDGER), SegmentQueue(stack.sqs, stack.queue_url))


def _counts():
    from scavenger.records import Counts

    return Counts(scanned=1, pages=1)
