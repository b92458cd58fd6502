"""Fault injection on the real client path: refreshes, throttling, short deadlines,
duplicates, stale hops, poison messages and fatal errors."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest

from planner.handler import handler as planner_handler
from scavenger import aws
from scavenger.ledger import Ledger
from scavenger.queue import SendFailed
from scavenger.runtime import lambda_runtime
from tests.conftest import (
    LEDGER,
    FakeClock,
    FakeContext,
    drain,
    roomy_context,
    sqs_event,
)
from tests.dataset import key_id, now, remaining_keys
from tests.faults import ErrorInjector, on_call, tick_per_call
from tests.runs import Crash, seed_sweep, start_run
from tests.sweeps import sweep_spec
from worker.handler import handler as worker_handler

pytestmark = pytest.mark.integration

SWEEP = sweep_spec(segments=3, completed=True)


@pytest.fixture
def seeded(stack, monkeypatch):
    """A composite-key table of 200 items, the sweep configured, pages of 7 items."""
    return seed_sweep(stack, monkeypatch, SWEEP, count=200, page_size=7)


def set_age(stack, key, instant) -> None:
    """A writer rewrites the item's age while the sweep runs."""
    stack.dynamodb.update_item(
        TableName="Swept",
        Key=key,
        UpdateExpression="SET ts = :older",
        ExpressionAttributeValues={":older": {"S": instant.isoformat()}},
    )


def finished_run(stack, run_id):
    return Ledger(stack.dynamodb, LEDGER).get_run(run_id)


def test_item_refreshed_between_scan_and_delete_is_kept(stack, seeded):
    run_id = start_run()
    victim = next(iter(sorted(seeded.doomed)))
    fresh = (now() + timedelta(days=1)).isoformat()

    def refresh(params):
        if key_id(params["Key"]) == victim:
            stack.dynamodb.update_item(
                TableName="Swept",
                Key=seeded.keys[victim],
                UpdateExpression="SET ts = :fresh",
                ExpressionAttributeValues={":fresh": {"S": fresh}},
            )

    on_call(aws.client("dynamodb"), "DeleteItem", refresh)

    drain(stack, context_factory=roomy_context)

    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept | {victim}
    totals = finished_run(stack, run_id).totals
    assert (totals.deleted, totals.skipped) == (len(seeded.doomed) - 1, 1)


def test_item_rewritten_with_another_expired_age_is_still_deleted(stack, seeded):
    # Between the scan and the delete a writer gives the item another age that is
    # just as expired (an older instant, in another offset): the delete's condition
    # fails, the worker reads the item again and deletes it at its new value.
    run_id = start_run()
    victim = next(iter(sorted(seeded.doomed)))
    older = (now() - timedelta(days=30)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    rewrites = []

    def rewrite(params):
        if key_id(params["Key"]) == victim and not rewrites:
            rewrites.append(older.isoformat())
            set_age(stack, seeded.keys[victim], older)

    on_call(aws.client("dynamodb"), "DeleteItem", rewrite)

    drain(stack, context_factory=roomy_context)

    assert rewrites
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept
    totals = finished_run(stack, run_id).totals
    assert (totals.deleted, totals.skipped) == (len(seeded.doomed), 0)


def test_an_item_rewritten_before_every_delete_is_given_up_after_a_few_tries(stack, seeded):
    run_id = start_run()
    victim = next(iter(sorted(seeded.doomed)))
    attempts = []

    def rewrite(params):
        if key_id(params["Key"]) == victim:
            attempts.append(1)
            set_age(stack, seeded.keys[victim], now() - timedelta(days=30 + len(attempts)))

    on_call(aws.client("dynamodb"), "DeleteItem", rewrite)

    drain(stack, context_factory=roomy_context)

    assert len(attempts) == 3
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept | {victim}
    totals = finished_run(stack, run_id).totals
    assert (totals.deleted, totals.skipped) == (len(seeded.doomed) - 1, 1)


def test_throttling_on_scan_and_delete_still_gives_exact_results(stack, seeded):
    run_id = start_run()
    client = aws.client("dynamodb")
    deletes = ErrorInjector(client, "DeleteItem", rate=0.2, seed=1)
    scans = ErrorInjector(client, "Scan", rate=0.3, seed=2, code="InternalServerError", status=500)

    drain(stack, context_factory=roomy_context)

    assert deletes.injected > 5 and scans.injected > 2
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept
    totals = finished_run(stack, run_id).totals
    assert totals.deleted == len(seeded.doomed)
    assert totals.throttled == deletes.injected + scans.injected


def test_short_deadlines_force_continuations_in_the_same_group(stack, seeded):
    run_id = start_run()
    clock = FakeClock()
    tick_per_call(aws.client("dynamodb"), lambda: clock.advance(0.2))

    drained = drain(stack, context_factory=lambda: FakeContext(clock, timeout_seconds=8))

    hops_by_group: dict[str, list[int]] = {}
    for body, group in zip(drained.bodies, drained.groups, strict=True):
        assert group == f"{body['sweep']}#{body['segment']}"
        hops_by_group.setdefault(group, []).append(body["hop"])
    assert any(max(hops) >= 2 for hops in hops_by_group.values())
    for hops in hops_by_group.values():
        assert hops == sorted(hops) and len(set(hops)) == len(hops)
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept
    run = finished_run(stack, run_id)
    assert run.status == "done"
    assert run.totals.deleted == len(seeded.doomed)
    assert run.totals.scanned == seeded.total
    assert run.totals.unparseable == seeded.unparseable


def test_redelivered_and_stale_messages_count_nothing_twice(stack, seeded):
    """After every invocation, every message delivered so far (older hops, and the
    current ones: duplicates that may do real work) is delivered once more."""
    run_id = start_run()
    clock = FakeClock()
    tick_per_call(aws.client("dynamodb"), lambda: clock.advance(0.2))
    history: list[dict] = []

    def deliver_with_replays(event, context):
        response = worker_handler(event, context)
        history.extend(json.loads(record["body"]) for record in event["Records"])
        for index, body in enumerate(history):
            record = {
                "MessageId": f"again-{index}",
                "ReceiptHandle": "x",
                "Body": json.dumps(body),
                "Attributes": {"MessageGroupId": f"sweep#{body['segment']}"},
            }
            again = worker_handler(
                sqs_event([record], stack.queue_arn), FakeContext(clock, timeout_seconds=8)
            )
            assert again == {"batchItemFailures": []}
        return response

    drained = drain(
        stack,
        context_factory=lambda: FakeContext(clock, timeout_seconds=8),
        handler=deliver_with_replays,
    )

    assert any(body["hop"] > 0 for body in history)
    assert drained.invocations > 1
    totals = finished_run(stack, run_id).totals
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept
    assert (totals.scanned, totals.expired) == (seeded.total, len(seeded.doomed))
    assert (totals.deleted, totals.skipped) == (len(seeded.doomed), 0)
    assert totals.unparseable == seeded.unparseable


def receive_all(stack):
    return stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]


def release(stack, messages):
    for message in messages:
        stack.sqs.change_message_visibility(
            QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def test_two_workers_on_one_segment_count_each_page_once(stack, seeded):
    """Worker A is overtaken mid-page by worker B on the same message (a redelivery
    after a visibility timeout). B checkpoints one page and then dies. A's checkpoint
    must lose, so its page is not counted a second time."""
    run_id = start_run()
    messages = receive_all(stack)
    first = messages[0]
    client = aws.client("dynamodb")
    overtaken = {"done": False}

    def overtake(params):
        if overtaken["done"]:
            return
        overtaken["done"] = True
        second_scan_fails = ErrorInjector(client, "Scan", rate=1.0, code="ValidationException")
        second_scan_fails.limit = 0
        client.meta.events.register(
            "after-call.dynamodb.Scan", lambda **_: setattr(second_scan_fails, "limit", 1)
        )
        response = worker_handler(sqs_event([first], stack.queue_arn), roomy_context())
        assert len(response["batchItemFailures"]) == 1  # B died on its second page
        client.meta.events.unregister("before-call.dynamodb.Scan", second_scan_fails)
        client.meta.events.unregister("before-call.sqs.Scan", second_scan_fails)

    on_call(client, "DeleteItem", overtake)
    response = worker_handler(sqs_event([first], stack.queue_arn), roomy_context())
    assert response == {"batchItemFailures": []}  # A saw it was overtaken and let go
    segment = json.loads(first["Body"])["segment"]
    state = Ledger(stack.dynamodb, LEDGER).get_segment(run_id, segment)
    assert (state.status, state.checkpoints) == ("failed", 1)

    release(stack, messages)
    drain(stack, context_factory=roomy_context)

    totals = finished_run(stack, run_id).totals
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept
    assert totals.scanned == seeded.total
    assert (totals.deleted, totals.skipped) == (len(seeded.doomed), 0)


def test_old_hop_delivered_after_a_newer_one_is_dropped(stack, seeded):
    run_id = start_run()
    clock = FakeClock()
    tick_per_call(aws.client("dynamodb"), lambda: clock.advance(0.2))
    messages = receive_all(stack)
    first = messages[0]
    response = worker_handler(
        sqs_event([first], stack.queue_arn), FakeContext(clock, timeout_seconds=4)
    )
    assert response == {"batchItemFailures": []}
    segment = json.loads(first["Body"])["segment"]
    ledger = Ledger(stack.dynamodb, LEDGER)
    moved_on = ledger.get_segment(run_id, segment)
    assert moved_on.hop == 1 and moved_on.status == "running"  # a continuation is queued

    scans = []
    aws.client("dynamodb").meta.events.register(
        "after-call.dynamodb.Scan", lambda **_: scans.append(1)
    )
    again = worker_handler(sqs_event([first], stack.queue_arn), roomy_context())

    assert again == {"batchItemFailures": []}
    assert scans == []  # dropped on sight, not swept
    assert ledger.get_segment(run_id, segment) == moved_on
    release(stack, messages[1:])
    stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=first["ReceiptHandle"])
    drain(stack, context_factory=roomy_context)
    totals = finished_run(stack, run_id).totals
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept
    assert (totals.scanned, totals.deleted) == (seeded.total, len(seeded.doomed))


def test_poison_message_fails_only_itself_and_later_records_of_its_group(stack, seeded):
    start_run()
    messages = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert len(messages) == 3
    poison = {
        "MessageId": "poison",
        "ReceiptHandle": "p",
        "Body": "{not json",
        "Attributes": dict(messages[0]["Attributes"]),
    }
    batch = [poison, *messages]  # the poison shares segment 0's group and comes first

    response = worker_handler(sqs_event(batch, stack.queue_arn), roomy_context())

    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    assert failed == {"poison", messages[0]["MessageId"]}


def test_fatal_error_fails_the_record_and_is_recorded_on_the_segment(stack, seeded):
    run_id = start_run()
    # A fatal error of the segment's own (a ValidationException naming no expression):
    # a systemic one (access denied, no table) halts the run instead (test_halt.py).
    ErrorInjector(aws.client("dynamodb"), "Scan", rate=1.0, code="ValidationException")
    messages = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]

    response = worker_handler(sqs_event(messages, stack.queue_arn), roomy_context())

    assert len(response["batchItemFailures"]) == len(messages)
    for state in Ledger(stack.dynamodb, LEDGER).list_segments(run_id):
        assert state.status == "failed"
        assert "ValidationException" in state.last_error
        assert state.first_error == state.last_error
    assert remaining_keys(stack.dynamodb, "Swept") == set(seeded.keys)


def test_hop_budget_stops_a_segment_that_never_finishes(stack, seeded, monkeypatch):
    monkeypatch.setenv("SCAVENGER_MAX_HOPS", "1")
    lambda_runtime.cache_clear()
    run_id = start_run()
    clock = FakeClock()
    tick_per_call(aws.client("dynamodb"), lambda: clock.advance(0.5))
    messages = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"]
    )["Messages"]
    body = json.loads(messages[0]["Body"])
    body["hop"] = 1
    record = dict(messages[0], Body=json.dumps(body))

    response = worker_handler(
        sqs_event([record], stack.queue_arn), FakeContext(clock, timeout_seconds=3)
    )

    assert len(response["batchItemFailures"]) == 1
    state = Ledger(stack.dynamodb, LEDGER).get_segment(run_id, body["segment"])
    assert state.status == "failed"
    assert "hop budget exhausted" in state.last_error


def test_continuation_whose_hop_bump_was_lost_is_accepted(stack, seeded):
    """The worker sends its continuation, then dies before raising the hop; its own
    message is gone too (say, to the DLQ). The continuation must carry on."""
    run_id = start_run()
    clock = FakeClock()
    client = aws.client("dynamodb")
    tick_per_call(client, lambda: clock.advance(0.2))
    sent = {"continuation": False, "crashed": False}
    aws.client("sqs").meta.events.register(
        "after-call.sqs.SendMessage", lambda **_: sent.update(continuation=True)
    )

    def die_before_the_hop_bump(**_):
        if sent["continuation"] and not sent["crashed"]:
            sent["crashed"] = True
            raise Crash()

    client.meta.events.register("before-call.dynamodb.UpdateItem", die_before_the_hop_bump)
    first, *others = receive_all(stack)
    release(stack, others)
    with pytest.raises(Crash):
        worker_handler(sqs_event([first], stack.queue_arn), FakeContext(clock, timeout_seconds=4))
    segment = json.loads(first["Body"])["segment"]
    ledger = Ledger(stack.dynamodb, LEDGER)
    assert ledger.get_segment(run_id, segment).hop == 0  # the bump never happened
    stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=first["ReceiptHandle"])

    drained = drain(stack, context_factory=roomy_context)

    assert any(b["segment"] == segment and b["hop"] == 1 for b in drained.bodies)
    totals = finished_run(stack, run_id).totals
    assert remaining_keys(stack.dynamodb, "Swept") == seeded.kept
    assert (totals.scanned, totals.deleted) == (seeded.total, len(seeded.doomed))


def test_a_record_reached_too_late_is_handed_back_untouched(stack, seeded):
    start_run()
    messages = receive_all(stack)
    calls = []
    aws.client("dynamodb").meta.events.register("before-call.dynamodb", lambda **_: calls.append(1))
    clock = FakeClock()

    response = worker_handler(
        sqs_event(messages, stack.queue_arn), FakeContext(clock, timeout_seconds=1.0)
    )

    assert len(response["batchItemFailures"]) == len(messages)
    assert calls == []  # no claim, no checkpoint: nothing that could be cut off


def test_planner_that_cannot_send_marks_every_unsent_segment_failed(stack, seeded):
    ErrorInjector(aws.client("sqs"), "SendMessageBatch", rate=1.0, code="AccessDenied")

    with pytest.raises(SendFailed) as failure:
        planner_handler({"sweep": "sweep"}, roomy_context())

    assert failure.value.segments == [0, 1, 2]
    (run,) = Ledger(stack.dynamodb, LEDGER).list_runs()
    states = Ledger(stack.dynamodb, LEDGER).list_segments(run.run_id)
    assert [state.status for state in states] == ["failed"] * 3
    assert all("planner could not send" in state.last_error for state in states)
    assert f"scavenger requeue {run.run_id}" in str(failure.value)


def test_a_failure_for_a_segment_the_ledger_does_not_know_writes_nothing(stack, seeded):
    ledger = Ledger(stack.dynamodb, LEDGER)

    assert ledger.record_failure("no-such-run", 3, "boom") is False

    assert ledger.list_segments("no-such-run") == []


def test_a_run_is_not_finished_while_a_segment_is_not_done(stack, seeded):
    """The count says complete but a segment is not done (an operator reopened it
    between a finisher's count and its sum): the run must stay open."""
    run_id = start_run()
    ledger = Ledger(stack.dynamodb, LEDGER)
    stack.dynamodb.update_item(
        TableName=LEDGER,
        Key={"run_id": {"S": run_id}, "part": {"S": "RUN"}},
        UpdateExpression="SET segments_done = :all",
        ExpressionAttributeValues={":all": {"N": "3"}},
    )

    assert ledger.finish_run_if_complete(run_id) is None

    assert ledger.get_run(run_id).status == "running"
