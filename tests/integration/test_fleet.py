"""The local event source mapping behaves like Lambda's for FIFO queues.

The handlers at the top run inside the fleet's function containers (they are
imported there by name, as Lambda resolves a handler string). Each message body
is a small script saying how the handler should treat it; the handler writes
what it did to a journal file the test reads back.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from scavenger.tools import cli
from scavenger.tools.local.emulator import Endpoints
from scavenger.tools.local.fleet import Fleet, FleetOptions, FleetStats
from tests.integration.conftest import FleetQueue, child_pids

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("importable_tests")]

JOURNAL = "FLEET_TEST_JOURNAL"
HERE = "tests.integration.test_fleet"


# -- handlers run by the fleet (in its containers) -------------------------------------


def _note(entry: dict[str, Any]) -> None:
    with open(os.environ[JOURNAL], "a", encoding="utf-8") as journal:
        journal.write(json.dumps(entry) + "\n")


def scripted_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Body: {"id", "fail_below": n, "sleep_below": n, "sleep": s}; non-JSON is poison.

    Like SqsFifoPartialProcessor, once a record of a group fails, the later
    records of that group in the batch fail too.
    """
    failed_groups: set[str] = set()
    failures = []
    for record in event["Records"]:
        receives = int(record["attributes"]["ApproximateReceiveCount"])
        group = record["attributes"]["MessageGroupId"]
        try:
            script = json.loads(record["body"])
        except ValueError:
            script = None
        name = script["id"] if script else record["body"]
        _note({"id": name, "receives": receives, "what": "started"})
        if script and receives < script.get("sleep_below", 0):
            time.sleep(script["sleep"])
        if script is None or group in failed_groups or receives < script.get("fail_below", 0):
            failed_groups.add(group)
            failures.append({"itemIdentifier": record["messageId"]})
            _note({"id": name, "receives": receives, "what": "failed"})
            continue
        _note({"id": name, "receives": receives, "what": "done"})
    return {"batchItemFailures": failures}


def recording_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Write down the event and the context as the handler sees them."""
    _note(
        {
            "event": event,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "pid": os.getpid(),
        }
    )
    return {"batchItemFailures": []}


# -- helpers ------------------------------------------------------------------------------


def run_fleet(
    emulator: Endpoints,
    queue: FleetQueue,
    journal: Path,
    handler: str,
    **options: Any,
) -> FleetStats:
    environment = emulator.environment() | {JOURNAL: str(journal)}
    fleet = Fleet(
        FleetOptions(
            queue_url=queue.queue_url,
            handler=f"{HERE}.{handler}",
            environment=environment,
            region=emulator.region,
            **({"workers": 2, "timeout_seconds": 5.0} | options),
        ),
        queue.sqs,
    )
    return fleet.run(until=None)


def entries(journal: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in journal.read_text().splitlines()]


def outcomes(journal: Path, what: str) -> dict[str, list[int]]:
    """id -> the receive counts at which the handler reached ``what``."""
    found: dict[str, list[int]] = {}
    for entry in entries(journal):
        if entry.get("what") == what:
            found.setdefault(entry["id"], []).append(entry["receives"])
    return found


def script(name: str, **behaviour: Any) -> str:
    return json.dumps({"id": name, **behaviour})


# -- tests --------------------------------------------------------------------------------


def test_handler_gets_lambdas_sqs_event_and_a_context_with_a_real_deadline(
    emulator: Endpoints, fleet_queue: FleetQueue, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    fleet_queue.sqs.send_message(
        QueueUrl=fleet_queue.queue_url,
        MessageBody=script("a"),
        MessageGroupId="g1",
        MessageDeduplicationId="d-a",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
    )
    fleet_queue.send(script("b"), "g2")

    stats = run_fleet(
        emulator, fleet_queue, journal, "recording_handler", workers=1, timeout_seconds=4.0
    )

    (seen,) = entries(journal)
    records = seen["event"]["Records"]
    assert [json.loads(record["body"])["id"] for record in records] == ["a", "b"]
    first = records[0]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"].endswith(fleet_queue.queue_url.rsplit("/", 1)[-1])
    assert first["awsRegion"] == "us-east-1"
    assert first["messageId"] and first["receiptHandle"] and first["md5OfBody"]
    attributes = first["attributes"]
    assert attributes["MessageGroupId"] == "g1"
    assert attributes["MessageDeduplicationId"] == "d-a"
    assert attributes["ApproximateReceiveCount"] == "1"
    assert {"SequenceNumber", "SentTimestamp", "ApproximateFirstReceiveTimestamp"} <= set(
        attributes
    )
    assert first["messageAttributes"]["kind"]["stringValue"] == "test"
    assert first["messageAttributes"]["kind"]["dataType"] == "String"
    assert 2000 < seen["remaining_ms"] <= 4000
    assert seen["function_name"] == "scavenger-worker"
    assert seen["invoked_function_arn"].endswith(":function:scavenger-worker")
    assert seen["memory_limit_in_mb"] == 1024 and seen["aws_request_id"]
    assert seen["pid"] != os.getpid()
    assert stats.invocations == 1 and stats.succeeded == 2 and stats.stopped_by == "drained"
    assert fleet_queue.counts() == 0


@pytest.mark.parametrize("fleet_queue", [6], indirect=True)
def test_failed_records_come_back_after_the_visibility_timeout_and_successes_are_deleted(
    emulator: Endpoints, fleet_queue: FleetQueue, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    fleet_queue.send(script("flaky", fail_below=2), "g1")
    for name in ("b", "c", "d"):
        fleet_queue.send(script(name), f"g-{name}")
    started = time.monotonic()

    # No retry delay: the failure waits out the queue's 6 s visibility timeout
    # (long enough that a cold container on a loaded machine finishes first).
    stats = run_fleet(emulator, fleet_queue, journal, "scripted_handler", workers=1)

    assert outcomes(journal, "failed") == {"flaky": [1]}
    assert outcomes(journal, "done") == {"flaky": [2], "b": [1], "c": [1], "d": [1]}
    assert time.monotonic() - started >= 6
    assert (stats.succeeded, stats.failed, stats.dlq) == (4, 1, 0)
    assert fleet_queue.counts() == 0


def test_an_invocation_that_overruns_its_timeout_is_killed_and_its_records_redeliver(
    emulator: Endpoints, fleet_queue: FleetQueue, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    fleet_queue.send(script("slow", sleep_below=2, sleep=60), "g1")
    fleet_queue.send(script("same-batch"), "g2")
    before = child_pids()
    started = time.monotonic()

    stats = run_fleet(
        emulator,
        fleet_queue,
        journal,
        "scripted_handler",
        workers=1,
        timeout_seconds=1.5,
        retry_delay=0,
    )

    # The first invocation never got past its 60 s sleep: it was killed at 1.5 s,
    # and both records of its batch came back; the second invocation finished them.
    assert time.monotonic() - started < 30
    assert outcomes(journal, "started")["slow"] == [1, 2]
    assert outcomes(journal, "done") == {"slow": [2], "same-batch": [2]}
    assert stats.timeouts == 1 and stats.cold_starts == 2 and stats.invocations == 2
    assert fleet_queue.counts() == 0
    assert child_pids() <= before


def test_poison_message_lands_in_the_dlq_after_max_receive_count_while_the_rest_completes(
    emulator: Endpoints, fleet_queue: FleetQueue, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    fleet_queue.send("this is not JSON", "poison")
    for name in ("a", "b", "c"):
        fleet_queue.send(script(name), f"g-{name}")
    fleet_queue.send(script("a-next"), "g-a")

    stats = run_fleet(emulator, fleet_queue, journal, "scripted_handler", retry_delay=0)

    # maxReceiveCount is 3: three failed receives, then SQS moves it on the next one.
    assert outcomes(journal, "failed") == {"this is not JSON": [1, 2, 3]}
    assert outcomes(journal, "done") == {"a": [1], "b": [1], "c": [1], "a-next": [1]}
    assert fleet_queue.dlq_bodies() == ["this is not JSON"]
    assert stats.dlq == 1
    assert fleet_queue.counts() == 0


def test_a_missing_handler_stops_the_fleet_with_its_import_error(
    emulator: Endpoints, fleet_queue: FleetQueue, tmp_path: Path
) -> None:
    fleet_queue.send(script("a"), "g1")
    before = child_pids()

    with pytest.raises(Exception, match="no_such_handler"):
        run_fleet(emulator, fleet_queue, tmp_path / "journal", "no_such_handler")

    assert child_pids() <= before


def test_work_command_drains_the_queue_named_in_the_config(
    emulator: Endpoints,
    fleet_queue: FleetQueue,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    journal = tmp_path / "journal"
    config = tmp_path / "scavenger.toml"
    config.write_text(
        "[resources]\n"
        f'queue_url = "{fleet_queue.queue_url}"\n'
        'ledger_table = "scavenger-ledger"\n'
        "[[sweeps]]\n"
        'name = "stale-workers"\n'
        'table = "Workers"\n'
        'age_attribute = "StartExecutionTime"\n'
        'age_format = "iso8601"\n'
        'max_age = "48h"\n'
    )
    monkeypatch.setenv(JOURNAL, str(journal))
    for name in ("a", "b", "c"):
        fleet_queue.send(script(name, fail_below=2 if name == "b" else 0), f"g-{name}")

    code = cli.main(
        [
            "work",
            "--config",
            str(config),
            "--endpoint-url",
            emulator.sqs,
            "--workers",
            "2",
            "--timeout",
            "5",
            "--retry-delay",
            "0",
            "--handler",
            f"{HERE}.scripted_handler",
            "--json",
        ]
    )

    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["succeeded"], stats["failed"], stats["stopped_by"]) == (3, 1, "drained")
    assert outcomes(journal, "done") == {"a": [1], "b": [2], "c": [1]}
    assert fleet_queue.counts() == 0


def test_work_command_without_a_queue_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SCAVENGER_QUEUE_URL", raising=False)
    monkeypatch.setenv(
        "SCAVENGER_SWEEPS",
        '[{"name": "x", "table": "Workers", '
        '"age_attribute": "t", "age_format": "iso8601", "max_age": "1d"}]',
    )

    monkeypatch.chdir(tmp_path)  # no scavenger.toml here

    assert cli.main(["work"]) == 2

    err = capsys.readouterr().err.strip()
    assert err.startswith("scavenger work: error: queue: not found")
    assert "\n" not in err
