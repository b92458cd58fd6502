"""A systemic error halts the run (DESIGN.md, "Ledger table"): what halts it and what
never does, and the operator's side: `status` says why, `plan` refuses, `requeue
--halted` resumes. The halt under faults and crashes is invariant 3's test
(test_invariants.py)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from planner.handler import handler as planner_handler
from scavenger import aws
from scavenger.ledger import Ledger
from scavenger.queue import SegmentQueue
from scavenger.tools.cli import main
from scavenger.tools.local.emulator import Endpoints
from scavenger.tools.local.fleet import Fleet, FleetOptions, FleetStats
from scavenger.tools.ops.requeue import Requeuer
from scavenger.tools.provision import create_ledger_table
from tests.conftest import configure_sweeps, roomy_context
from tests.dataset import remaining_keys
from tests.faults import ErrorInjector, RefuseTable
from tests.integration.conftest import FleetQueue
from tests.runs import ledger, queue_size, seed_sweep, seeded_table, start_run, work
from tests.sweeps import sweep_spec
from worker.handler import handler as worker_handler

pytestmark = pytest.mark.integration

TABLE = "Swept"
SWEEP = sweep_spec(table=TABLE, segments=3, completed=True)


@pytest.fixture
def seeded(stack, monkeypatch, tmp_path):
    """90 items over 3 segments, pages of 7, no scavenger.toml in the working directory."""
    monkeypatch.chdir(tmp_path)
    return seed_sweep(stack, monkeypatch, SWEEP, count=90, page_size=7)


def assert_exact(stack, truth, run_id: str) -> None:
    run = ledger(stack).get_run(run_id)
    assert run.status == "done"
    assert remaining_keys(stack.dynamodb, TABLE) == truth.kept  # none wrongly deleted or missed
    assert (run.totals.deleted, run.totals.expired) == (len(truth.doomed), len(truth.doomed))
    assert run.totals.scanned == truth.total


def assert_halted(stack, run_id: str, code: str) -> Any:
    """The run and all its segments halted on ``code`` on the swept table; no record
    failed into the DLQ."""
    run = ledger(stack).get_run(run_id)
    assert run.status == "halted" and run.halt is not None
    assert (run.halt.code, run.halt.resource) == (code, TABLE)
    assert {state.status for state in ledger(stack).list_segments(run_id)} == {"halted"}
    assert queue_size(stack, stack.queue_url) == queue_size(stack, stack.dlq_url) == 0
    return run


# -- what halts a run -------------------------------------------------------------------


def test_wrong_permissions_halt_the_run_and_the_cli_shows_why_and_resumes_it(stack, seeded, cli):
    run_id = start_run()
    refusal = RefuseTable(aws.client("dynamodb"), TABLE)

    failures = work(stack).failures

    assert failures == 0 and len(refusal.refused) == 1
    run = assert_halted(stack, run_id, "AccessDeniedException")
    runs = cli("status", "--json")
    assert runs.code == 0
    (listed,) = runs.json["runs"]
    assert listed["status"] == "halted" and listed["segments_halted"] == 3
    assert listed["halt"]["call"] == run.halt.call and listed["halt"]["resource"] == TABLE
    assert "injected" in listed["halt"]["message"]
    assert f"run {run_id} is halted: AccessDeniedException on {run.halt.call} of Swept" in runs.err
    assert f"scavenger requeue {run_id} --halted" in runs.err
    detail = cli("status", run_id, "--json")
    assert [row["status"] for row in detail.json["segments"]] == ["halted"] * 3
    assert "is halted: AccessDeniedException" in detail.err
    (scheduled,) = planner_handler({"sweep": "sweep"}, roomy_context())["runs"]
    assert scheduled["started"] is False and f"run {run_id} is halted" in scheduled["reason"]

    refusal.refusing = False  # the grant is fixed
    plan = cli("plan", "--json")
    assert plan.code == 1 and plan.json["runs"][0]["started"] is False
    assert plan.json["runs"][0]["reason"].startswith(f"run {run_id} is halted: AccessDenied")
    assert f"`scavenger requeue {run_id} --halted`" in plan.json["runs"][0]["reason"]
    resumed = cli("requeue", run_id, "--halted", "--json")

    assert resumed.code == 0, resumed.err
    assert resumed.json["resumed_run"] is True
    assert [(s["segment"], s["hop"], s["sent"]) for s in resumed.json["segments"]] == [
        (0, 1, True),
        (1, 1, True),
        (2, 1, True),
    ]
    assert "the run was halted and is running again" in resumed.err
    assert work(stack).failures == 0
    assert_exact(stack, seeded, run_id)
    again = cli("requeue", run_id, "--halted")
    assert again.code == 2 and "is done and has no halted segment" in again.err


def test_a_halt_in_the_middle_of_a_page_counts_the_deletes_it_made(stack, seeded, cli):
    # One delete goes through, then the grant to delete is gone: the first page halts
    # with part of its items deleted. They never come back in a rescan, so the ledger
    # counts them at the halt, and the resumed run's totals are exact.
    run_id = start_run()
    refusal = RefuseTable(
        aws.client("dynamodb"), TABLE, after_deletes=1, operations=("DeleteItem",)
    )

    assert work(stack).failures == 0

    assert_halted(stack, run_id, "AccessDeniedException")
    assert refusal.refused[0][0] == "DeleteItem"
    gone = len(seeded.keys) - len(remaining_keys(stack.dynamodb, TABLE))
    counted = sum(state.counts.deleted for state in ledger(stack).list_segments(run_id))
    assert gone > 0 and counted == gone
    refusal.refusing = False
    assert cli("requeue", run_id, "--halted").code == 0
    assert work(stack).failures == 0
    assert_exact(stack, seeded, run_id)


def test_a_missing_table_halts_the_run(stack, seeded):
    run_id = start_run()
    stack.dynamodb.delete_table(TableName=TABLE)

    assert work(stack).failures == 0

    run = assert_halted(stack, run_id, "ResourceNotFoundException")
    assert run.halt.call in ("DescribeTable", "Scan")


def test_a_where_dynamodb_rejects_halts_the_run_on_its_first_scan(stack, seeded, monkeypatch):
    # The planner reads the where before a run starts; this one is redeployed under a
    # running run, and passes the config's syntax check: `status` is a reserved word.
    run_id = start_run()
    configure_sweeps(monkeypatch, {**SWEEP, "where": "#c = :n1 OR status = :s1"})

    assert work(stack).failures == 0

    run = assert_halted(stack, run_id, "ValidationException")
    assert run.halt.call == "Scan" and "expression" in run.halt.message.lower()
    assert remaining_keys(stack.dynamodb, TABLE) == set(seeded.keys)


# -- what never halts a run -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [("ProvisionedThroughputExceededException", 400), ("InternalServerError", 500)],
)
def test_transient_errors_that_outlast_the_retries_never_halt_the_run(stack, seeded, code, status):
    run_id = start_run()
    client = aws.client("dynamodb")
    # More failures in a row than a call's attempts: the worker gives up on the call,
    # checkpoints and continues in a new message.
    scans = ErrorInjector(client, "Scan", rate=1.0, code=code, status=status, limit=25)
    deletes = ErrorInjector(client, "DeleteItem", rate=1.0, code=code, status=status, limit=25)

    assert work(stack).failures == 0

    assert scans.injected == deletes.injected == 25
    assert_exact(stack, seeded, run_id)
    run = ledger(stack).get_run(run_id)
    assert run.halt is None and run.last_halt is None
    assert queue_size(stack, stack.dlq_url) == 0


def test_ledger_errors_never_halt_the_run(stack, seeded):
    run_id = start_run()
    client = aws.client("dynamodb")
    denied = ErrorInjector(client, "UpdateItem", rate=1.0, code="AccessDeniedException", limit=2)
    missing = ErrorInjector(
        client, "BatchGetItem", rate=1.0, code="ResourceNotFoundException", limit=1
    )

    failures = work(stack).failures

    assert denied.injected == 2 and missing.injected == 1 and failures > 0  # retried
    run = ledger(stack).get_run(run_id)
    assert run.status == "done" and run.last_halt is None
    # (A refused checkpoint leaves its page's deletes uncounted, as a crash there does:
    # counters are not compared.)
    assert remaining_keys(stack.dynamodb, TABLE) == seeded.kept
    assert queue_size(stack, stack.dlq_url) == 0


def test_requeue_halted_refusals_are_one_line_and_change_nothing(stack, seeded, cli):
    run_id = start_run()
    work(stack)

    for argv, message in [
        (["requeue", run_id, "--halted"], f"run {run_id} is done and has no halted segment"),
        (["requeue", run_id, "--halted", "--from-start"], "--from-start cannot be used with"),
        (["requeue", "20990101T000000Z-dead", "--halted"], "is not in the ledger"),
    ]:
        refused = cli(*argv)
        assert refused.code == 2 and refused.out == ""
        assert message in refused.err and len(refused.err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as usage:  # argparse's usage error
        main(["requeue", run_id, "--halted", "--segment", "1"])
    assert usage.value.code == 2


# -- on the local fleet: segments in flight at once --------------------------------------

REFUSE_WHILE = "HALT_TEST_REFUSE_WHILE"  # a file: the table is refused while it exists
JOURNAL = "HALT_TEST_JOURNAL"
_refusals: list[RefuseTable] = []


def refused_worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The worker handler in a fleet container whose calls to the swept table are
    refused (AccessDenied) while the test's flag file exists; journals each invocation."""
    if not _refusals:
        _refusals.append(RefuseTable(aws.client("dynamodb"), TABLE))
    refusal = _refusals[0]
    refusal.refusing = os.path.exists(os.environ[REFUSE_WHILE])
    before = len(refusal.refused)
    response = worker_handler(event, context)
    entry = {
        "segments": [json.loads(record["body"])["segment"] for record in event["Records"]],
        "refused": refusal.refused[before:],
        "failed": len(response["batchItemFailures"]),
    }
    with open(os.environ[JOURNAL], "a", encoding="utf-8") as journal:
        journal.write(json.dumps(entry) + "\n")
    return response


def run_fleet(emulator: Endpoints, queue: FleetQueue, environment: dict[str, str]) -> FleetStats:
    options = FleetOptions(
        queue_url=queue.queue_url,
        handler=f"{__name__}.refused_worker",
        environment=environment,
        region=emulator.region,
        workers=3,
        timeout_seconds=5.0,
        batch_size=1,
    )
    return Fleet(options, queue.sqs).run(until=None)


@pytest.mark.usefixtures("importable_tests")
def test_on_the_fleet_wrong_permissions_halt_the_run_before_any_record_fails(
    emulator: Endpoints, fleet_queue: FleetQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six segments, three workers: every segment's calls to the swept table are
    refused. The run halts after at most one refused call per segment (those in flight
    when it halts), no record fails and nothing reaches the DLQ; once the grant is
    back, `requeue --halted` (the ops logic) finishes the run exactly."""
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SCAVENGER_QUEUE_URL", fleet_queue.queue_url)
    monkeypatch.setenv("SCAVENGER_DLQ_URL", fleet_queue.dlq_url)
    monkeypatch.setenv("SCAVENGER_LEDGER_TABLE", "halt-ledger")
    monkeypatch.setenv("SCAVENGER_PAGE_SIZE", "7")
    aws.reset_clients()
    dynamodb = emulator.client("dynamodb")
    create_ledger_table(dynamodb, "halt-ledger")
    truth = seeded_table(dynamodb, TABLE, count=120)
    configure_sweeps(monkeypatch, {**SWEEP, "segments": 6})
    run_id = start_run()
    flag, journal = tmp_path / "refuse", tmp_path / "journal"
    flag.touch()
    environment = dict(os.environ) | {REFUSE_WHILE: str(flag), JOURNAL: str(journal)}
    fleet_ledger = Ledger(dynamodb, "halt-ledger")

    stats = run_fleet(emulator, fleet_queue, environment)

    invocations = [json.loads(line) for line in journal.read_text().splitlines()]
    refused = Counter(entry["segments"][0] for entry in invocations for _ in entry["refused"])
    assert refused and max(refused.values()) == 1 and sum(refused.values()) <= 3
    assert stats.failed == 0 and sum(entry["failed"] for entry in invocations) == 0
    assert fleet_queue.counts() == fleet_queue.counts(fleet_queue.dlq_url) == 0
    run = fleet_ledger.get_run(run_id)
    assert run.status == "halted" and run.halt.code == "AccessDeniedException"
    assert run.halt.resource == TABLE and run.halt.segment in refused
    segments = fleet_ledger.list_segments(run_id)
    assert {state.status for state in segments} == {"halted"} and len(segments) == 6

    flag.unlink()
    requeuer = Requeuer(fleet_ledger, SegmentQueue(fleet_queue.sqs, fleet_queue.queue_url), None)
    report = requeuer.execute(*requeuer.decide_halted(run_id))
    assert report.ok and report.resumed_run
    stats = run_fleet(emulator, fleet_queue, environment)

    assert stats.failed == 0 and fleet_queue.counts(fleet_queue.dlq_url) == 0
    finished = fleet_ledger.get_run(run_id)
    assert finished.status == "done" and finished.last_halt == run.halt
    assert remaining_keys(dynamodb, TABLE) == truth.kept  # wrongly deleted 0, missed 0
    assert finished.totals.deleted == len(truth.doomed)


def test_requeue_of_halted_segments_by_number_also_resumes_the_run(stack, seeded, cli):
    run_id = start_run()
    refusal = RefuseTable(aws.client("dynamodb"), TABLE, code="ResourceNotFoundException")
    work(stack)
    assert_halted(stack, run_id, "ResourceNotFoundException")
    refusal.refusing = False

    every = ("--segment", "0", "--segment", "1", "--segment", "2")
    requeued = cli("requeue", run_id, *every, "--json")

    assert requeued.code == 0 and requeued.json["resumed_run"] is True
    assert ledger(stack).get_run(run_id).status == "running"
    assert work(stack).failures == 0
    assert_exact(stack, seeded, run_id)
