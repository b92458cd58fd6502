"""A run counts each finished segment exactly once, in a counter that never grows the
run item: the segment's move to done and the run's count are one transaction
(DESIGN.md, "Ledger table", Finish)."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import pytest

from scavenger.ledger import Ledger
from scavenger.records import Counts
from tests.conftest import LEDGER

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def load_scale_script():
    spec = importlib.util.spec_from_file_location("scale_ledger", ROOT / "scripts/scale_ledger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scale_ledger"] = module
    spec.loader.exec_module(module)
    return module


def new_run(ledger: Ledger, segments: int, run_id: str = "run-1") -> str:
    """A run of sweep ``sweep`` on table ``Workers``, written as the planner writes it."""
    load_scale_script().create_run(ledger, run_id, segments, sweep="sweep", table="Workers")
    return run_id


def finish(ledger: Ledger, run_id: str, segment: int, *, hop: int = 0, checkpoints: int = 0):
    return ledger.checkpoint(
        run_id,
        segment,
        hop=hop,
        checkpoints=checkpoints,
        cursor=None,
        counts=Counts(scanned=10, expired=4, deleted=3, skipped=1, pages=1),
        done=True,
    )


def test_few_hundred_segments_with_duplicates_and_a_requeue_end_done_exactly_once(stack):
    """The scale script's scenario, small: 200 segments, duplicate finishes, a
    from-start requeue. One thread: moto's transactions are not atomic across threads
    (the script runs them concurrently on DynamoDB Local)."""
    scale = load_scale_script()

    result = scale.drive_run(
        stack.dynamodb, LEDGER, 200, workers=1, duplicate_every=5, concurrent_pairs=0
    )

    assert result["ok"], result
    assert result["status"] == "done" and result["segments_done"] == 200
    assert result["finishers"] == 1 and result["totals_match_model"]
    assert result["duplicate_finishes"] >= 40 and result["finishes"] >= 240


def test_a_duplicate_finish_is_not_counted(stack):
    ledger = Ledger(stack.dynamodb, LEDGER)
    run_id = new_run(ledger, 3)

    assert finish(ledger, run_id, 0)
    finish(ledger, run_id, 0)  # the same last page again (a redelivered message)
    finish(ledger, run_id, 0, hop=1, checkpoints=1)  # a later hop of a done segment

    run = ledger.get_run(run_id)
    assert run.segments_done == 1 and run.status == "running"
    assert ledger.get_segment(run_id, 0).counts.scanned == 10


def test_the_last_count_finishes_the_run_once_with_totals_summed_from_the_segments(stack):
    ledger = Ledger(stack.dynamodb, LEDGER)
    run_id = new_run(ledger, 3)
    for segment in range(3):
        finish(ledger, run_id, segment)

    first = ledger.finish_run_if_complete(run_id)
    again = ledger.finish_run_if_complete(run_id)

    assert first == Counts(scanned=30, expired=12, deleted=9, skipped=3, pages=3)
    assert again is None
    run = ledger.get_run(run_id)
    assert (run.status, run.segments_done, run.totals) == ("done", 3, first)
    assert run.to_json()["done_segments"] == 3  # the key RunRecord always printed


def test_a_from_start_requeue_of_a_done_segment_reopens_the_run_and_uncounts_it(stack):
    ledger = Ledger(stack.dynamodb, LEDGER)
    run_id = new_run(ledger, 2)
    for segment in range(2):
        finish(ledger, run_id, segment)
    ledger.finish_run_if_complete(run_id)
    done = ledger.get_segment(run_id, 1)

    assert ledger.requeue_segment(done, new_hop=1, nonce="n", from_start=True, reopen_run=True)

    reopened = ledger.get_run(run_id)
    assert (reopened.status, reopened.segments_done, reopened.totals) == ("running", 1, None)
    assert ledger.finish_run_if_complete(run_id) is None
    assert finish(ledger, run_id, 1, hop=1, checkpoints=done.checkpoints)
    totals = ledger.finish_run_if_complete(run_id)
    # Segment 1 kept its 3 deletions (scanned = expired = 3 after the reset) plus its rerun.
    assert totals is not None and totals.deleted == 3 + 3 + 3
    assert totals.scanned == 10 + 3 + 10
    assert ledger.get_run(run_id).segments_done == 2


def test_a_requeue_that_lost_its_race_with_a_finish_changes_nothing(stack):
    """The requeue read the segment running; it finished since: the requeue's segment
    condition fails, and the run's count is not touched either (one transaction)."""
    ledger = Ledger(stack.dynamodb, LEDGER)
    run_id = new_run(ledger, 2)
    running = ledger.get_segment(run_id, 0)
    finish(ledger, run_id, 0)

    assert not ledger.requeue_segment(
        running, new_hop=1, nonce="n", from_start=True, reopen_run=True
    )

    assert ledger.get_run(run_id).segments_done == 1


def test_a_redelivered_message_of_a_done_segment_finishes_a_run_left_open(stack, monkeypatch):
    """The worker that counted the last segment died before finishing the run: the
    message comes back, the worker sees its segment done and finishes the run."""
    from tests.conftest import configure_sweeps, roomy_context, sqs_event
    from tests.dataset import create_table
    from worker.handler import handler as worker_handler

    create_table(stack.dynamodb, "Workers", "hash_string")
    configure_sweeps(
        monkeypatch,
        {
            "name": "sweep",
            "table": "Workers",
            "age_attribute": "StartExecutionTime",
            "age_format": "iso8601",
            "max_age": "48h",
        },
    )
    ledger = Ledger(stack.dynamodb, LEDGER)
    run_id = new_run(ledger, 2)
    for segment in range(2):
        finish(ledger, run_id, segment)  # counted, and then the worker died
    assert ledger.get_run(run_id).status == "running"
    from scavenger.message import SegmentMessage
    from tests.dataset import now

    message = SegmentMessage(run_id, "sweep", "Workers", 1, 2, now())
    stack.sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody=message.to_json(),
        MessageGroupId=message.group_id,
        MessageDeduplicationId="redelivered",
    )
    received = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MessageSystemAttributeNames=["All"]
    )["Messages"]

    response = worker_handler(sqs_event(received, stack.queue_arn), roomy_context())

    assert response["batchItemFailures"] == []
    run = ledger.get_run(run_id)
    assert (run.status, run.segments_done) == ("done", 2)
    assert run.totals.deleted == 6
