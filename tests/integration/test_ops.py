"""The operator commands end to end on in-process moto, through ``scavenger.tools.cli.main``:
a segment forced into the DLQ and redriven, redrive and requeue interrupted, requeue
from the checkpoint and from the start, status against the ledger, every refusal."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from planner.handler import handler as planner_handler
from scavenger import aws
from scavenger.tools.cli import main
from scavenger.tools.ops import dlq as dlq_module
from tests.conftest import LEDGER, configure_sweeps, roomy_context
from tests.dataset import make_key, now, remaining_keys
from tests.faults import ErrorInjector
from tests.runs import Crash, ledger, queue_size, seed_sweep, start_run, work
from tests.sweeps import sweep_spec

pytestmark = pytest.mark.integration

TABLE = "Swept"
SWEEP = sweep_spec(table=TABLE, segments=3, completed=True)
ITEM_COUNTERS = ("scanned", "expired", "deleted", "skipped", "unparseable")


# -- helpers ----------------------------------------------------------------------------


@pytest.fixture
def seeded(stack, monkeypatch, tmp_path, request):
    """90 items over 3 segments, pages of 7, no scavenger.toml in the working directory."""
    monkeypatch.chdir(tmp_path)
    dry_run = getattr(request, "param", False)
    return seed_sweep(stack, monkeypatch, {**SWEEP, "dry_run": dry_run}, count=90, page_size=7)


class SegmentScans:
    """Records the worker's Scan calls on one segment of the swept table and, while
    ``failing``, refuses them once ``allowed`` calls have gone through, with a fatal error
    of the segment's own (a ValidationException naming no expression: it does not halt)."""

    def __init__(self, segment: int, *, failing: bool = False, allowed: int = 0):
        self.segment = segment
        self.failing = failing
        self.allowed = allowed
        self.starts: list[Any] = []
        aws.client("dynamodb").meta.events.register(
            "before-parameter-build.dynamodb.Scan", self.on_scan
        )

    def on_scan(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") != TABLE or params.get("Segment") != self.segment:
            return
        self.starts.append(params.get("ExclusiveStartKey"))
        if self.failing and len(self.starts) > self.allowed:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "injected"}}, "Scan"
            )


def crash_once(service: str, operation: str) -> None:
    state = {"crashed": False}

    def hook(**_: Any) -> None:
        if not state["crashed"]:
            state["crashed"] = True
            raise Crash(operation)

    aws.client(service).meta.events.register(f"before-call.{service}.{operation}", hook)


def visible(stack, url: str) -> int:
    return int(
        stack.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    )


def ledger_snapshot(stack) -> list[dict[str, Any]]:
    items = stack.dynamodb.scan(TableName=LEDGER, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["run_id"]["S"], item["part"]["S"]))


def everything(stack) -> tuple[Any, ...]:
    """What a refusal must leave untouched: the ledger and both queues."""
    return (
        ledger_snapshot(stack),
        queue_size(stack, stack.queue_url),
        queue_size(stack, stack.dlq_url),
    )


def item_counts(counts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in ITEM_COUNTERS}


def assert_exact(stack, truth, run_id: str) -> None:
    run = ledger(stack).get_run(run_id)
    assert run.status == "done"
    assert remaining_keys(stack.dynamodb, TABLE) == truth.kept
    assert run.totals.deleted == len(truth.doomed)
    assert run.totals.expired == len(truth.doomed)
    assert run.totals.scanned == truth.total
    assert run.totals.unparseable == truth.unparseable


def segment_into_dlq(stack, segment: int = 1, allowed: int = 0) -> tuple[str, SegmentScans]:
    """Plan a run whose ``segment`` fails fatally until it lands in the DLQ."""
    run_id = start_run()
    scans = SegmentScans(segment, failing=True, allowed=allowed)
    work(stack)
    assert queue_size(stack, stack.dlq_url) == 1
    return run_id, scans


# -- a segment in the DLQ ---------------------------------------------------------------


def test_segment_forced_into_the_dlq_is_redriven_and_the_run_completes_exactly(stack, seeded, cli):
    run_id, scans = segment_into_dlq(stack)
    failed = ledger(stack).get_segment(run_id, 1)
    assert failed.status == "failed" and "ValidationException" in failed.last_error
    assert ledger(stack).get_run(run_id).status == "running"

    listed = cli("dlq", "--json")
    assert listed.code == 0
    (message,) = listed.json["messages"]
    assert (message["run_id"], message["segment"], message["hop"]) == (run_id, 1, 0)
    assert message["receive_count"] >= 5
    assert "ValidationException" in message["last_error"]
    assert message["stale"] is False
    assert visible(stack, stack.dlq_url) == 1  # listed, not consumed

    scans.failing = False
    moved = cli("redrive", "--json")
    assert moved.code == 0
    assert (moved.json["moved"], moved.json["failed"], moved.json["remaining"]) == (1, 0, 0)

    work(stack)
    assert_exact(stack, seeded, run_id)
    assert queue_size(stack, stack.dlq_url) == 0


def test_status_marks_the_segment_in_the_dlq_and_matches_the_ledger(stack, seeded, cli):
    run_id, _ = segment_into_dlq(stack)

    shown = cli("status", run_id, "--json")

    assert shown.code == 0
    rows = {row["segment"]: row for row in shown.json["segments"]}
    for state in ledger(stack).list_segments(run_id):
        row = rows[state.segment]
        assert (row["status"], row["hop"], row["checkpoints"]) == (
            state.status,
            state.hop,
            state.checkpoints,
        )
        assert {name: row[name] for name in state.counts.as_dict()} == state.counts.as_dict()
        assert (row["last_error"], row["updated_at"]) == (state.last_error, state.updated_at)
        assert row["in_dlq"] is (state.segment == 1)
        assert row["dlq_stale"] is False  # in the DLQ at the ledger's hop: a redrive resumes it
    assert shown.json["dlq"]["segments"] == 1
    assert shown.json["run"]["segments_failed"] == 1
    assert visible(stack, stack.dlq_url) == 1
    assert "hop 0" in shown.err


def test_status_lists_recent_runs_with_their_progress(stack, seeded, cli):
    run_id = start_run()
    work(stack)

    listed = cli("status", "--json")

    assert listed.code == 0
    (summary,) = listed.json["runs"]
    run = ledger(stack).get_run(run_id)
    assert summary["run_id"] == run_id and summary["status"] == "done"
    assert (summary["segments_done"], summary["segments_total"]) == (3, 3)
    assert summary["deleted"] == run.totals.deleted == len(seeded.doomed)
    assert summary["seconds"] is not None
    assert run_id in listed.err


def test_redrive_interrupted_by_a_failed_delete_loses_nothing_and_a_rerun_finishes(
    stack, seeded, cli
):
    run_id, scans = segment_into_dlq(stack)
    scans.failing = False
    ErrorInjector(aws.client("sqs"), "DeleteMessage", rate=1.0, code="AccessDenied", limit=1)

    first = cli("redrive", "--json")

    assert first.code == 1
    assert (first.json["moved"], first.json["sent_not_deleted"]) == (0, 1)
    assert queue_size(stack, stack.queue_url) == 1  # sent...
    assert visible(stack, stack.dlq_url) == 1  # ...and still in the DLQ, visible again

    work(stack)
    assert_exact(stack, seeded, run_id)
    totals = ledger(stack).get_run(run_id).totals

    second = cli("redrive", "--json")
    assert (second.code, second.json["moved"]) == (0, 1)
    work(stack)  # the duplicate reaches a done segment and is dropped
    assert ledger(stack).get_run(run_id).totals == totals
    assert queue_size(stack, stack.dlq_url) == 0


def test_redrive_killed_between_send_and_delete_loses_nothing(stack, seeded, cli, monkeypatch):
    run_id, scans = segment_into_dlq(stack)
    scans.failing = False
    monkeypatch.setattr(dlq_module, "REDRIVE_VISIBILITY_SECONDS", 1)
    crash_once("sqs", "DeleteMessage")

    with pytest.raises(Crash):
        main(["redrive"])

    assert queue_size(stack, stack.queue_url) == 1
    assert queue_size(stack, stack.dlq_url) == 1
    time.sleep(1.1)  # the dead process's receive runs out; the DLQ copy is visible again
    rerun = cli("redrive", "--json")
    assert (rerun.code, rerun.json["moved"]) == (0, 1)

    work(stack)
    assert_exact(stack, seeded, run_id)
    assert queue_size(stack, stack.dlq_url) == 0


def test_redrive_dry_run_and_max_move_only_what_they_say(stack, seeded, cli):
    run_id = start_run()
    scans = [SegmentScans(segment, failing=True) for segment in (0, 2)]
    work(stack)
    assert queue_size(stack, stack.dlq_url) == 2
    for scan in scans:
        scan.failing = False

    dry = cli("redrive", "--dry-run", "--json")
    assert (dry.code, dry.json["would_move"], dry.json["moved"]) == (0, 2, 0)
    assert (queue_size(stack, stack.queue_url), visible(stack, stack.dlq_url)) == (0, 2)

    one = cli("redrive", "--max", "1", "--json")
    assert (one.code, one.json["moved"]) == (0, 1)
    assert (queue_size(stack, stack.queue_url), queue_size(stack, stack.dlq_url)) == (1, 1)

    rest = cli("redrive", "--json")
    assert rest.json["moved"] == 1
    work(stack)
    assert_exact(stack, seeded, run_id)


def test_native_redrive_on_an_endpoint_without_move_tasks_is_one_line(stack, seeded, cli):
    segment_into_dlq(stack)
    before = everything(stack)

    refused = cli("redrive", "--native")

    assert refused.code == 2
    assert "does not support StartMessageMoveTask" in refused.one_line_error
    assert refused.out == ""
    assert everything(stack) == before


# -- requeue ----------------------------------------------------------------------------


def test_requeue_from_the_checkpoint_resumes_at_the_cursor(stack, seeded, cli):
    run_id, scans = segment_into_dlq(stack, segment=1, allowed=2)
    stopped = ledger(stack).get_segment(run_id, 1)
    assert (stopped.status, stopped.checkpoints) == ("failed", 2)
    assert stopped.cursor is not None
    scans.failing = False
    scans.starts.clear()

    requeued = cli("requeue", run_id, "--segment", "1", "--json")

    assert requeued.code == 0
    (outcome,) = requeued.json["segments"]
    assert (outcome["segment"], outcome["hop"], outcome["sent"]) == (1, 1, True)
    state = ledger(stack).get_segment(run_id, 1)
    assert (state.status, state.hop, state.cursor) == ("pending", 1, stopped.cursor)
    assert state.counts == stopped.counts

    work(stack)
    assert scans.starts[0] == stopped.cursor  # resumed where the ledger stood
    assert None not in scans.starts  # the pages already swept were not scanned again
    assert_exact(stack, seeded, run_id)

    # The original message, still in the DLQ, is now stale: redriving it changes nothing.
    listed = cli("dlq", "--json")
    assert listed.json["messages"][0]["stale"] is True
    totals = ledger(stack).get_run(run_id).totals
    assert cli("redrive").code == 0
    work(stack)
    assert ledger(stack).get_run(run_id).totals == totals


@pytest.mark.parametrize("seeded", [False, True], ids=["deleting", "dry-run"], indirect=True)
def test_requeue_from_the_start_rescans_and_counts_nothing_twice(stack, seeded, cli):
    run_id = start_run()
    work(stack)
    before_run = ledger(stack).get_run(run_id)
    before_segment = ledger(stack).get_segment(run_id, 1)
    scans = SegmentScans(1)

    requeued = cli("requeue", run_id, "--segment", "1", "--from-start", "--json")

    assert requeued.code == 0 and requeued.json["reopened_run"] is True
    reopened = ledger(stack).get_run(run_id)
    assert reopened.status == "running" and reopened.totals is None
    assert reopened.segments_done == before_run.segments_done - 1
    reset = ledger(stack).get_segment(run_id, 1)
    kept = before_segment.counts.deleted
    assert (reset.status, reset.hop, reset.cursor) == ("pending", 1, None)
    assert item_counts(reset.counts) == {
        "scanned": kept,
        "expired": kept,
        "deleted": kept,
        "skipped": 0,
        "unparseable": 0,
    }

    work(stack)
    assert scans.starts[0] is None  # rescanned from the start
    after_run = ledger(stack).get_run(run_id)
    assert after_run.status == "done"
    assert item_counts(after_run.totals) == item_counts(before_run.totals)
    assert item_counts(ledger(stack).get_segment(run_id, 1).counts) == item_counts(
        before_segment.counts
    )


def test_requeue_from_the_start_finds_what_expired_since_and_counts_it_once(stack, seeded, cli):
    run_id = start_run()
    work(stack)
    stale = (now() - timedelta(days=10)).isoformat()
    late = [make_key("composite_number_string", 1000 + index) for index in range(30)]
    for key in late:
        stack.dynamodb.put_item(
            TableName=TABLE, Item={**key, "ts": {"S": stale}, "Completed": {"N": "1"}}
        )

    requeued = cli("requeue", run_id, "--segment", "0", "--segment", "1", "--segment", "2",
                   "--from-start", "--json")  # fmt: skip

    assert requeued.code == 0
    work(stack)
    totals = ledger(stack).get_run(run_id).totals
    assert remaining_keys(stack.dynamodb, TABLE) == seeded.kept
    assert totals.deleted == len(seeded.doomed) + 30
    assert totals.expired == len(seeded.doomed) + 30
    assert totals.scanned == seeded.total + 30
    assert totals.unparseable == seeded.unparseable


def test_requeue_of_a_segment_in_flight_needs_force_and_then_wins(stack, seeded, cli):
    run_id = start_run()  # three messages on the queue, segments pending at hop 0
    before = everything(stack)

    refused = cli("requeue", run_id, "--segment", "0")

    assert refused.code == 2
    assert "may be in flight; pass --force" in refused.one_line_error
    assert everything(stack) == before

    forced = cli("requeue", run_id, "--segment", "0", "--force", "--json")
    assert forced.code == 0 and forced.json["segments"][0]["hop"] == 1
    work(stack)  # the hop-0 message is now stale and dropped
    assert_exact(stack, seeded, run_id)


@pytest.mark.parametrize("rerun_flags", [["--from-start"], []], ids=["same", "plain"])
def test_requeue_killed_before_its_send_is_finished_by_running_it_again(
    stack, seeded, cli, rerun_flags
):
    run_id = start_run()
    work(stack)
    before = ledger(stack).get_run(run_id).totals
    crash_once("sqs", "SendMessage")

    with pytest.raises(Crash):
        main(["requeue", run_id, "--segment", "1", "--from-start"])

    assert ledger(stack).get_segment(run_id, 1).hop == 1
    assert queue_size(stack, stack.queue_url) == 0  # recorded, not sent
    status = cli("status", run_id, "--json")
    assert status.json["segments"][1]["requeue_unconfirmed"] is True

    rerun = cli("requeue", run_id, "--segment", "1", *rerun_flags, "--json")

    assert rerun.code == 0
    (outcome,) = rerun.json["segments"]
    assert (outcome["hop"], outcome["finished_interrupted"]) == (1, True)
    work(stack)
    after = ledger(stack).get_run(run_id)
    assert after.status == "done"
    assert item_counts(after.totals) == item_counts(before)
    assert cli("status", run_id, "--json").json["segments"][1]["requeue_unconfirmed"] is False


REFUSALS = [
    (["requeue", "20990101T000000Z-dead", "--segment", "0"], "is not in the ledger"),
    (["requeue", "{run}", "--segment", "3"], "has segments 0..2"),
    (["requeue", "{run}", "--segment", "-1"], "has segments 0..2"),
    (["requeue", "{run}", "--segment", "0", "--segment", "2"], "pass --from-start"),
    (["status", "20990101T000000Z-dead"], "is not in the ledger"),
    (["status", "--limit", "0"], "--limit: 0 must be at least 1"),
    (["redrive", "--native", "--max", "3"], "--max cannot be used with --native"),
    (["redrive", "--max", "0"], "--max: 0 must be at least 1"),
    (["dlq", "--max", "0"], "--max: 0 must be at least 1"),
    (["plan", "--sweep", "nope"], "--sweep nope: not configured"),
    (["plan", "--config", "missing.toml"], "missing.toml does not exist"),
    (["dlq", "--stack", "nope"], "--stack nope:"),
]


def test_every_refusal_is_one_line_and_changes_nothing(stack, seeded, cli, subtests):
    run_id = start_run()
    work(stack)
    before = everything(stack)

    for argv, message in REFUSALS:
        argv = [arg.replace("{run}", run_id) for arg in argv]
        with subtests.test(" ".join(argv)):
            refused = cli(*argv)

            assert refused.code == 2
            assert refused.out == ""
            line = refused.one_line_error
            assert line.startswith(f"scavenger {argv[0]}: error: ")
            assert message in line
            assert everything(stack) == before


# -- plan and resource discovery -------------------------------------------------------


def test_plan_starts_a_run_and_refuses_a_second_while_it_runs(stack, seeded, cli):
    planned = cli("plan", "--sweep", "sweep", "--json")

    assert planned.code == 0
    (run,) = planned.json["runs"]
    assert run["started"] is True and run["segments"] == 3
    assert ledger(stack).get_run(run["run_id"]).total_segments == 3
    assert queue_size(stack, stack.queue_url) == 3

    again = cli("plan", "--json")
    assert again.code == 1
    assert again.json["runs"][0]["started"] is False
    assert "still running" in again.json["runs"][0]["reason"]
    assert queue_size(stack, stack.queue_url) == 3

    work(stack)
    assert_exact(stack, seeded, run["run_id"])
    dry = cli("plan", "--dry-run", "--json")
    assert dry.code == 0 and dry.json["runs"][0]["dry_run"] is True


def test_plan_reads_sweeps_and_resources_from_the_config_file(stack, seeded, cli, monkeypatch):
    for name in ("SWEEPS", "QUEUE_URL", "DLQ_URL", "LEDGER_TABLE"):
        monkeypatch.delenv(f"SCAVENGER_{name}")
    with open("ops.toml", "w") as config:
        config.write(
            f"""
[resources]
queue_url = "{stack.queue_url}"
ledger_table = "{LEDGER}"

[[sweeps]]
name = "sweep"
table = "{TABLE}"
age_attribute = "ts"
age_format = "iso8601"
max_age = "48h"
segments = 2
"""
        )

    planned = cli("plan", "--config", "ops.toml", "--json")

    assert planned.code == 0 and planned.json["runs"][0]["segments"] == 2
    assert queue_size(stack, stack.queue_url) == 2
    checked = cli("redrive", "--config", "ops.toml", "--dry-run")
    assert checked.code == 0
    assert "queue from config [resources] queue_url; DLQ from the queue's redrive" in checked.out


def test_resources_come_from_the_stack_outputs_and_the_queue_redrive_policy(
    stack, seeded, cli, monkeypatch
):
    run_id, _ = segment_into_dlq(stack)
    for name in ("SCAVENGER_QUEUE_URL", "SCAVENGER_DLQ_URL", "SCAVENGER_LEDGER_TABLE"):
        monkeypatch.delenv(name)
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "QueueUrl": {"Value": stack.queue_url},
            "LedgerTableName": {"Value": LEDGER},
        },
    }
    aws.client("cloudformation").create_stack(StackName="ops", TemplateBody=json.dumps(template))

    listed = cli("dlq", "--stack", "ops", "--json")

    assert listed.code == 0
    assert listed.json["dlq_url"] == stack.dlq_url  # from the queue's redrive policy
    assert listed.json["messages"][0]["run_id"] == run_id

    monkeypatch.setenv("SCAVENGER_QUEUE_URL", stack.dlq_url)
    conflict = cli("status", "--stack", "ops")
    assert conflict.code == 2
    assert "its QueueUrl" in conflict.one_line_error


def test_a_dry_run_prices_the_real_run_before_and_after(stack, seeded, cli):
    described = []
    aws.client("dynamodb").meta.events.register(
        "after-call.dynamodb.DescribeTable", lambda **_: described.append(1)
    )
    planned = cli("plan", "--dry-run", "--json")
    (run,) = planned.json["runs"]
    assert len(described) == 1  # keys, budget, sizing and the cost ceiling: one answer
    ceiling = run["real_run_cost_ceiling"]
    assert ceiling["total"] > 0 and ceiling["dynamodb_writes"] > 0

    work(stack)
    status = cli("status", run["run_id"], "--json")

    assert status.code == 0
    assert status.json["run"]["counts"]["deleted"] == 0
    assert status.json["run"]["cost"]["total"] > 0  # the dry run's own reads and time
    projected = status.json["real_run_cost"]
    # deleting only what the dry run found expired costs less than deleting everything
    assert 0 < projected["dynamodb_writes"] < ceiling["dynamodb_writes"]
    assert "a real run would cost about" in status.err


# -- streams and the rough edges of issue 15 ----------------------------------------------


def test_human_output_is_the_requested_output_on_stdout_and_stderr_stays_quiet(stack, seeded, cli):
    planned = cli("plan", "--dry-run")
    work(stack)
    answers = {
        "plan": planned,
        "status": cli("status"),
        "status RUN_ID": cli("status", ledger(stack).list_runs()[0].run_id),
        "dlq": cli("dlq"),
        "redrive": cli("redrive", "--dry-run"),
    }

    for name, answer in answers.items():
        assert answer.code == 0, (name, answer)
        assert answer.out.strip(), name
        assert answer.err == "", (name, answer.err)
    assert "planned runs" in answers["plan"].out and "a real run would cost" in planned.out
    assert "recent runs" in answers["status"].out and "done" in answers["status"].out
    assert "totals: scanned 90" in answers["status RUN_ID"].out
    assert "the DLQ is empty" in answers["dlq"].out
    assert "would move 0 message(s)" in answers["redrive"].out


def test_plan_while_a_run_is_running_has_a_truthful_dry_run_row_and_no_log_json(stack, seeded, cli):
    running = start_run()

    refused = cli("plan", "--dry-run")
    as_json = cli("plan", "--dry-run", "--json")

    assert refused.code == 1 and refused.err == ""
    assert "{" not in refused.out and "still running" in refused.out
    row = next(line for line in refused.out.splitlines() if "sweep" in line and running in line)
    assert " yes " in row
    (run,) = as_json.json["runs"]
    assert run["started"] is False and run["dry_run"] is True
    assert not as_json.err.lstrip().startswith("{")


@pytest.mark.parametrize(
    ("where", "names", "values", "key"),
    [
        # Each passes the local syntax check; only the engine knows better.
        ("status = :n1", {}, {":n1": 1}, "where"),
        ("#c = :n1 AND size = :n1", {"#c": "Completed"}, {":n1": 1}, "where"),
        ("#c.size = :n1", {"#c": "Completed"}, {":n1": 1}, "where"),
    ],
)
def test_an_expression_dynamodb_rejects_stops_plan_before_anything_is_written(
    stack, seeded, cli, monkeypatch, where, names, values, key
):
    broken = {**SWEEP, "where": where, "names": names, "values": values}
    configure_sweeps(monkeypatch, {**SWEEP, "name": "fine"}, broken)
    before = everything(stack)

    refused = cli("plan")

    assert refused.code == 2
    line = refused.one_line_error
    assert line.startswith("scavenger plan: error: sweep 'sweep': " + key + ":"), line
    assert "DynamoDB rejects it" in line
    assert refused.out == ""
    assert everything(stack) == before  # nothing enqueued, nothing in the ledger
    assert ledger_snapshot(stack) == []


def test_the_planner_handler_refuses_a_rejected_expression_with_the_sweep_and_key(
    stack, seeded, monkeypatch
):
    from scavenger.errors import ConfigError

    configure_sweeps(monkeypatch, {**SWEEP, "where": "#c IN (:n1, :s1) AND status = :n1"})
    with pytest.raises(ConfigError, match=r"sweep 'sweep': where: DynamoDB rejects it"):
        planner_handler({"sweep": "sweep"}, roomy_context())
    assert ledger_snapshot(stack) == [] and queue_size(stack, stack.queue_url) == 0


def test_an_unknown_sweep_is_refused_by_status_and_plan(stack, seeded, cli):
    start_run()
    for argv in (("status", "--sweep", "nope"), ("plan", "--sweep", "nope")):
        refused = cli(*argv)
        assert refused.code == 2, argv
        assert "nope" in refused.one_line_error and refused.out == ""
    known = cli("status", "--sweep", "sweep", "--json")
    assert known.code == 0 and len(known.json["runs"]) == 1
