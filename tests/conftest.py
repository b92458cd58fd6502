"""Shared fixtures: fake credentials, in-process moto, tables, queues, a fake Lambda
context with a controllable clock, and a drain loop that plays the SQS event source."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from scavenger import aws
from scavenger.config import parse_sweeps, sweeps_to_json
from scavenger.runtime import lambda_runtime
from scavenger.tools.local.fleet import lambda_event
from scavenger.tools.provision import create_ledger_table, create_queues

REGION = "us-east-1"
LEDGER = "scavenger-ledger"


def quiet_node_end_of_life_banner() -> None:
    """jsii's Python runtime prints Node's end-of-life banner line by line as Python byte
    strings (``b'!!  Node 20 is end-of-life ...'``) into every test run that imports
    aws_cdk. README says which Node to use; the tests need not repeat it, garbled.
    Runs when this conftest loads, before tests/infra imports aws_cdk (starting jsii)."""
    node = shutil.which("node")
    if node is None:
        return
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if major.isdigit():
        os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", major)
        os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


quiet_node_end_of_life_banner()


def pytest_configure(config: pytest.Config) -> None:
    """pytest resets warning filters around each test, dropping the one the runtime sets
    when scavenger.observability is imported: state it again for every test."""
    from scavenger.observability import EMPTY_METRICS_WARNING

    config.addinivalue_line("filterwarnings", f"ignore:{EMPTY_METRICS_WARNING}")


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScavengerTests")
    aws.reset_clients()
    lambda_runtime.cache_clear()
    yield
    aws.reset_clients()
    lambda_runtime.cache_clear()


class FakeClock:
    """Monotonic time that tests advance by hand (or per API call)."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeContext:
    """A Lambda context whose remaining time follows a clock."""

    clock: Callable[[], float]
    timeout_seconds: float
    function_name: str = "scavenger-worker"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "test-request"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:scavenger-worker"
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - self.clock()) * 1000))


@dataclass
class Stack:
    """The moto-backed resources of one test: ledger, queue pair, clients."""

    dynamodb: Any
    sqs: Any
    queue_url: str
    dlq_url: str
    queue_arn: str
    ledger_table: str = LEDGER


@contextmanager
def moto_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The ledger and the queue pair in a moto of their own, named in the environment,
    with fresh cached clients (no earlier moto's clients or hooks remain)."""
    from moto import mock_aws

    with mock_aws():
        aws.reset_clients()
        lambda_runtime.cache_clear()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        create_ledger_table(dynamodb, LEDGER)
        queues = create_queues(sqs, "scavenger", visibility_timeout=30)
        arn = sqs.get_queue_attributes(QueueUrl=queues.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        monkeypatch.setenv("SCAVENGER_QUEUE_URL", queues.queue_url)
        monkeypatch.setenv("SCAVENGER_DLQ_URL", queues.dlq_url)
        monkeypatch.setenv("SCAVENGER_LEDGER_TABLE", LEDGER)
        try:
            yield Stack(dynamodb, sqs, queues.queue_url, queues.dlq_url, arn)
        finally:
            aws.reset_clients()
            lambda_runtime.cache_clear()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with moto_stack(monkeypatch) as resources:
        yield resources


def configure_sweeps(monkeypatch: pytest.MonkeyPatch, *sweeps: dict[str, Any]) -> None:
    """The sweeps in the worker's environment; ``delete_mode`` is "item" unless a sweep
    says otherwise, as moto's PartiQL DELETE ignores its predicates (never test batch
    mode there: DynamoDB Local is the engine for it)."""
    sweeps = tuple({"delete_mode": "item", **sweep} for sweep in sweeps)
    monkeypatch.setenv("SCAVENGER_SWEEPS", sweeps_to_json(parse_sweeps(list(sweeps))))
    lambda_runtime.cache_clear()


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Received SQS messages in the shape Lambda's event source mapping delivers."""
    return lambda_event(messages, queue_arn, REGION)


@dataclass
class Drain:
    invocations: int = 0
    failures: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


def drain(
    stack: Stack,
    *,
    context_factory: Callable[[], Any],
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None,
    max_invocations: int = 500,
) -> Drain:
    """Play the event source mapping until the queue is empty: receive up to 10,
    invoke, delete what succeeded, make failures visible again at once."""
    from worker.handler import handler as worker_handler

    handler = handler or worker_handler
    result = Drain()
    while result.invocations < max_invocations:
        received = stack.sqs.receive_message(
            QueueUrl=stack.queue_url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            attributes = stack.sqs.get_queue_attributes(
                QueueUrl=stack.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            if all(value == "0" for value in attributes.values()):
                return result
            continue
        result.invocations += 1
        for message in received:
            result.bodies.append(json.loads(message["Body"]) if message["Body"][:1] == "{" else {})
            result.groups.append(message["Attributes"]["MessageGroupId"])
        response = handler(sqs_event(received, stack.queue_arn), context_factory())
        failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
        result.failures += len(failed)
        settle_records(stack, received, failed)
    raise AssertionError(f"queue did not drain within {max_invocations} invocations")


def settle_records(stack: Stack, messages: list[dict[str, Any]], failed: set[str]) -> None:
    """What the event source does after an invocation: delete the records that succeeded,
    make the ``failed`` ones visible again at once."""
    for message in messages:
        if message["MessageId"] in failed:
            stack.sqs.change_message_visibility(
                QueueUrl=stack.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        else:
            stack.sqs.delete_message(
                QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


@dataclass
class CliResult:
    """What one ``scavenger`` command did: its exit code and its two streams."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def one_line_error(self) -> str:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        return lines[0]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """``cli("status", "--json")`` runs the operator CLI in this process."""
    from scavenger.tools.cli import main

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def assert_usage_error(
    capsys: pytest.CaptureFixture[str], command: str, options: list[str], message: str
) -> None:
    """``scavenger COMMAND OPTIONS`` exits 2 with one line on stderr that says ``message``."""
    from scavenger.tools.cli import main

    assert main([command, *options]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"scavenger {command}: error: {message}")
    assert "\n" not in err


def roomy_context() -> FakeContext:
    return FakeContext(clock=os_clock, timeout_seconds=900)


def os_clock() -> float:
    import time

    return time.monotonic()


@pytest.fixture
def env_page_size(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    def set_page_size(size: int) -> None:
        monkeypatch.setenv("SCAVENGER_PAGE_SIZE", str(size))
        lambda_runtime.cache_clear()

    return set_page_size


@pytest.fixture
def moto_binary_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's parallel Scan hashes the hash key as text and crashes on binary keys;
    patch the emulator (never the product) to hash the raw bytes instead."""
    import hashlib

    from moto.dynamodb.models.dynamo_type import Item

    original = Item.is_within_segment

    def is_within_segment(self: Any, segments: Any) -> bool:
        value = self.hash_key.value
        if segments == (None, None) or not isinstance(value, bytes):
            return original(self, segments)
        segment, total = segments
        return hashlib.md5(value).digest()[0] % total == segment

    monkeypatch.setattr(Item, "is_within_segment", is_within_segment)
