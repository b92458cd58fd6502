"""Chaos runs of the local fleet: kills, throttling, 500s (also after the call took
effect), duplicates, out-of-order hops, a concurrent writer and poison messages,
reproducible from a seed; then the run is driven to completion and checked.

Fifty seeds run in-process (the worker handler on the fleet's threads, kills as
SimulatedKill) against one moto server per module; one runs with real container
processes killed by SIGKILL, and one through ``scavenger demo --chaos --json``.
Each seed's faults are printed per kind (``-rA`` shows them) and recorded as a
test property.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from scavenger.ledger import Ledger
from scavenger.settings import Settings
from scavenger.tools import cli
from scavenger.tools.local.chaos import (
    ChaosOptions,
    ChaosPlan,
    ChaosReport,
    FaultJournal,
    error_response,
    new_client,
    run_chaos,
)
from scavenger.tools.local.demo import (
    QuietObserver,
    create_resources,
    remaining_keys,
    seed_table,
    sweep_toml,
    worker_environment,
    write_sweep_config,
)
from scavenger.tools.local.emulator import Endpoints
from scavenger.tools.local.fleet import lambda_event
from tests.integration.conftest import child_pids

pytestmark = [pytest.mark.integration]

IN_PROCESS_SEEDS = range(1, 51)
PROCESS_SEEDS = (101,)


def in_process_options(seed: int) -> ChaosOptions:
    """Small and fast: 50-90 items, 3 segments, 0.8 s invocations that often continue.

    botocore backs off up to a second on each throttle (its standard mode), which
    is most of a small run's time: the suite runs a tenth of the demo's error rates
    (the soak in README's "Reliability" runs them all).
    """
    return ChaosOptions(
        seed=seed,
        items=50 + seed % 5 * 10,
        segments=3,
        workers=2,
        timeout_seconds=0.8,
        page_size=6,
        safety_margin_seconds=0.2,
        retry_delay=0,
        error_scale=0.1,
        in_process=True,
    )


def assert_invariants(report: ChaosReport) -> None:
    facts = report.as_dict()
    facts.pop("plan")
    assert report.wrongly_deleted == [], facts
    assert report.missed == [], facts
    assert report.lost == 0, facts
    assert report.ledger_gap == 0, facts
    assert report.ok


@pytest.fixture
def record_faults(record_property: Any) -> Iterator[list[ChaosReport]]:
    reports: list[ChaosReport] = []
    yield reports
    for report in reports:
        print(report.summary())
        record_property("chaos", json.dumps(report.as_dict()["faults"]))


@pytest.mark.parametrize("seed", IN_PROCESS_SEEDS)
def test_chaos_run_in_process_keeps_every_invariant(
    seed: int, emulator: Endpoints, record_faults: list[ChaosReport]
) -> None:
    report = run_chaos(in_process_options(seed), endpoints=emulator)
    record_faults.append(report)

    assert_invariants(report)


# The batch path under the same faults (whole calls and single statements throttled or
# failed, responses lost after the deletes ran, containers killed mid-batch) on AWS's
# own DynamoDB Local; SQS stays on the module's moto.
BATCH_SEEDS = range(201, 221)


@pytest.mark.parametrize("seed", BATCH_SEEDS)
def test_chaos_run_on_the_batch_path_keeps_every_invariant(
    seed: int, emulator: Endpoints, dynamodb_local_url: str, record_faults: list[ChaosReport]
) -> None:
    endpoints = Endpoints(sqs=emulator.sqs, dynamodb=dynamodb_local_url, region=emulator.region)
    options = replace(
        in_process_options(seed),
        items=30 + seed % 3 * 10,
        error_scale=0.5,
        dynamodb="dynamodb-local",
    )

    report = run_chaos(options, endpoints=endpoints)
    record_faults.append(report)

    assert_invariants(report)
    assert report.as_dict()["delete_mode"] == "batch"
    assert report.fleet.api_calls.get("BatchExecuteStatement", 0) > 0
    assert report.fleet.api_calls.get("DeleteItem", 0) < report.items


@pytest.mark.slow
@pytest.mark.parametrize("seed", PROCESS_SEEDS)
def test_chaos_run_with_container_processes_killed_by_sigkill_keeps_every_invariant(
    seed: int, emulator: Endpoints, record_faults: list[ChaosReport]
) -> None:
    before = child_pids()
    options = replace(
        in_process_options(seed),
        items=150,
        timeout_seconds=2.0,
        page_size=10,
        safety_margin_seconds=0.4,
        error_scale=0.3,
        in_process=False,
    )

    report = run_chaos(options, endpoints=emulator)
    record_faults.append(report)

    assert_invariants(report)
    assert report.fleet.cold_starts > options.workers or not report.fleet.function_errors
    assert child_pids() <= before


@pytest.mark.slow
def test_demo_command_with_chaos_reports_the_faults_and_passes(
    capsys: pytest.CaptureFixture[str], record_faults: list[ChaosReport]
) -> None:
    arguments = "demo --chaos --seed 7 --items 100 --workers 2 --segments 2 --json"
    code = cli.main(arguments.split())

    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["ok"] and report["seed"] == 7 and report["chaos"]
    assert report["wrongly_deleted"] == report["missed"] == report["lost"] == 0
    assert report["ledger_gap"] == 0
    assert report["faults_total"] == sum(report["faults"].values()) > 0
    assert report["rerun"] == "scavenger demo --chaos --seed 7 --items 100"
    assert "PASS" in captured.err and "faults" in captured.err
    print("seed 7 (CLI):", report["faults"])


# -- regression: a checkpoint whose response was lost after it took effect -----------------


def after_send_500_once(client: Any, operation: str, matches: Any) -> list[bool]:
    """Send the first matching call for real, then answer 500 (as a lost response)."""
    from botocore.httpsession import URLLib3Session

    http = URLLib3Session(timeout=10)
    fired: list[bool] = []

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["regression.params"] = dict(params)

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        params = request.context.get("regression.params", {})
        if fired or not matches(params):
            return None
        fired.append(True)
        real = http.send(request)
        assert real.status_code == 200, real.content
        return error_response(request, "dynamodb", "InternalServerError", 500)

    client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", remember)
    client.meta.events.register(f"before-send.dynamodb.{operation}", before_send)
    return fired


def test_a_checkpoint_that_took_effect_but_answered_500_still_finishes_the_segment(
    emulator: Endpoints, tmp_path: Path
) -> None:
    from scavenger.batch import handle
    from scavenger.config import load_sweeps_json
    from scavenger.plan import PlanRequest, plan
    from scavenger.runtime import Runtime

    dynamodb, sqs = new_client("dynamodb", emulator), new_client("sqs", emulator)
    resources = create_resources(dynamodb, sqs, f"-{random.randrange(16**6):06x}", 5.0)
    sweep = write_sweep_config(tmp_path / "scavenger.toml", sweep_toml(resources.table, 1))
    now = datetime.now(UTC).replace(microsecond=0)
    seed_table(dynamodb, resources.table, 40, now, random.Random(5), QuietObserver())
    environment = worker_environment(emulator, resources, sweep, page_size=10)

    def runtime() -> Runtime:
        return Runtime(
            settings=Settings.from_env(environment),
            sweeps=load_sweeps_json(environment["SCAVENGER_SWEEPS"]),
            dynamodb=new_client("dynamodb", emulator),
            sqs=new_client("sqs", emulator),
        )

    (run,) = plan(PlanRequest(sweep=sweep.name), runtime())["runs"]
    worker = runtime()
    # The first checkpoint reaches the ledger, but its answer is a 500: botocore
    # retries it, and the retry finds the condition false (the write is there).
    fired = after_send_500_once(
        worker.dynamodb,
        "UpdateItem",
        lambda params: (
            params.get("TableName") == resources.ledger_table
            and ":deleted" in params.get("ExpressionAttributeValues", {})
        ),
    )

    drain_in_process(
        sqs, resources.queue_url, lambda event, context: handle(event, context, worker)
    )

    assert fired
    ledger = Ledger(dynamodb, resources.ledger_table)
    (segment,) = ledger.list_segments(run["run_id"])
    assert segment.status == "done"
    finished = ledger.get_run(run["run_id"])
    assert finished is not None and finished.status == "done"
    assert finished.totals is not None
    assert finished.totals.deleted == 40 - len(remaining_keys(dynamodb, resources.table))


class _Context:
    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.aws_request_id = "regression"
        self.function_name = "scavenger-worker"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:w"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def drain_in_process(sqs: Any, queue_url: str, handler: Any, limit: int = 50) -> None:
    """Receive, invoke, delete the successes, until the queue is empty."""
    for _ in range(limit):
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return
        event = lambda_event(messages, "arn:aws:sqs:us-east-1:000000000000:q.fifo", "us-east-1")
        result = handler(event, _Context(30))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    raise AssertionError("the queue did not drain")


def test_fleet_poller_is_throttled_on_its_receive_delete_and_visibility_calls_only(
    emulator: Endpoints, tmp_path: Path
) -> None:
    from dataclasses import replace

    from botocore.exceptions import ClientError

    from scavenger.tools.local.chaos import poller_client
    from scavenger.tools.provision import create_queues

    journal = FaultJournal(tmp_path / "faults.jsonl")
    plan = replace(ChaosPlan.from_seed(1, 100), poller_throttle=1.0)
    sqs = poller_client(emulator, plan, journal)
    queues = create_queues(new_client("sqs", emulator), f"poller-{random.randrange(16**6):06x}")

    with pytest.raises(ClientError, match="ThrottlingException"):
        sqs.receive_message(QueueUrl=queues.queue_url, WaitTimeSeconds=0)
    sqs.get_queue_attributes(QueueUrl=queues.queue_url, AttributeNames=["All"])

    assert journal.faults()["throttle.poller"] >= 1
    assert {e["operation"] for e in journal.entries()} == {"ReceiveMessage"}


def test_plan_is_drawn_from_the_seed_alone() -> None:
    assert ChaosPlan.from_seed(7, 500) == ChaosPlan.from_seed(7, 500)
    assert ChaosPlan.from_seed(7, 500) != ChaosPlan.from_seed(8, 500)
    assert ChaosPlan.from_json(ChaosPlan.from_seed(7, 500).to_json()) == ChaosPlan.from_seed(7, 500)


def test_fault_journal_counts_faults_and_not_its_bookkeeping(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path / "faults.jsonl")
    journal.record("kill.after_delete", container=1)
    journal.record("ledger.deleted", container=1, key=[1, "a"])
    journal.record("kill.after_delete", container=2)

    assert journal.faults() == {"kill.after_delete": 2}


def test_fault_journal_finds_every_delete_no_checkpoint_counted(tmp_path: Path) -> None:
    journal = FaultJournal(tmp_path / "faults.jsonl")
    for container, key in ((1, [1, "a"]), (2, [2, "b"]), (1, [1, "c"])):
        journal.record("ledger.deleted", container=container, key=key)
    journal.record("ledger.checkpoint_sent", container=1)
    journal.record("ledger.checkpointed", container=1)  # counts a and c
    journal.record("ledger.deleted", container=1, key=[1, "d"])
    journal.record("ledger.settled", container=1, cause="killed after delete")
    journal.record("ledger.uncounted", cause="delete response lost", key=[3, "e"])
    journal.record("ledger.deleted", container=2, key=[2, "f"])  # then killed by the fleet
    journal.record("ledger.deleted", container=3, key=[3, "g"])
    journal.record("ledger.checkpoint_sent", container=3)  # and killed: applied or not

    books = journal.books()

    assert books.uncounted == {
        (1, "d"): "killed after delete",
        (3, "e"): "delete response lost",
        (2, "b"): "container died unsettled (killed at its deadline)",
        (2, "f"): "container died unsettled (killed at its deadline)",
    }
    assert books.in_flight == [{(3, "g")}]
    gone = {(1, "a"), (1, "c"), (1, "d"), (3, "e"), (2, "b"), (2, "f"), (3, "g")}
    assert books.gap(gone, ledger_deleted=2) == 0  # the in-flight checkpoint was lost
    assert books.gap(gone, ledger_deleted=3) == 0  # or applied
    assert books.gap(gone, ledger_deleted=4) == -1
    assert books.gap(gone - {(1, "a")}, ledger_deleted=3) == -1
