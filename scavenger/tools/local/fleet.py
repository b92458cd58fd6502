"""An SQS event source mapping for FIFO queues, on one machine.

Like Lambda's: up to ``workers`` concurrent invocations, each in its own
container process; batches of up to 10 records in Lambda's SQS event shape;
partial batch failures honoured (successes deleted, failures left to reappear
after the visibility timeout); an invocation that overruns its deadline killed
and its records left to redeliver. SQS itself moves a message past
maxReceiveCount to the DLQ when it is received again (moto does too).

One difference, on purpose: with ``retry_delay`` set, failed records (and the
records of a killed invocation) are made visible again after that many seconds
with ChangeMessageVisibility, instead of after the queue's whole visibility
timeout. The demo uses it so retries show up in seconds; ``None`` behaves
exactly like Lambda.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from scavenger.dlq import dlq_url_from_policy
from scavenger.errors import RetryableError, ScavengerError
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.settings import safety_margin
from scavenger.tools.local.function import (
    DEFAULT_HANDLER,
    Container,
    FunctionError,
    FunctionHost,
    FunctionSpec,
    InvocationTimedOut,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

BATCH_SIZE = 10
POLL_WAIT_SECONDS = 1
# With short polls (poll_wait_seconds=0), how long an idle slot waits before the next.
SHORT_POLL_PAUSE_SECONDS = 0.05
TICK_SECONDS = 0.25
POLLER_ATTEMPTS = 3
# Consecutive empty readings of the queue counters (with every worker idle) that
# make it "drained": one is exact on the emulator, AWS's counters are approximate.
DRAINED_READINGS = 2


def check_timeout(timeout_seconds: float, batch_size: int) -> None:
    """Each record of a batch keeps the worker's safety margin in reserve and needs a
    little time to work; a timeout shorter than that would hand every record back."""
    margin = safety_margin()
    minimum = margin * (batch_size + 1)
    if not timeout_seconds >= minimum:
        raise ScavengerError(
            f"--timeout: {timeout_seconds:g} is too short for --batch-size {batch_size}: "
            f"each record keeps {margin:g} s in reserve to checkpoint and continue "
            f"(at least {minimum:g} s)"
        )


def default_workers() -> int:
    """Concurrency when none is given: two invocations per core, at least two."""
    return max(2, 2 * (os.cpu_count() or 1))


class FleetHooks(Protocol):
    """Local chaos mode's two entry points (scavenger/tools/local/chaos/fleet_faults.py);
    without hooks the fleet behaves exactly like Lambda's event source mapping."""

    def start_container(self, spec: FunctionSpec) -> FunctionHost:
        """A new container for ``spec`` (chaos adds its fault plan, or runs in-process)."""
        ...

    def keep_delivered(self, succeeded: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Of a batch's succeeded records, those to leave on the queue (delivered again)."""
        ...


@dataclass(frozen=True)
class FleetOptions:
    queue_url: str
    workers: int = field(default_factory=default_workers)
    timeout_seconds: float = 60.0
    handler: str = DEFAULT_HANDLER
    environment: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    region: str = "us-east-1"
    batch_size: int = BATCH_SIZE
    retry_delay: int | None = None
    memory_mb: int = 1024
    function_name: str = "scavenger-worker"
    log_path: Path | None = None
    drained_readings: int = DRAINED_READINGS
    # 0: short polls, a brief pause when empty. moto's long poll does not wake when
    # a FIFO group unblocks or a message becomes visible again, only when one is sent.
    poll_wait_seconds: int = POLL_WAIT_SECONDS
    hooks: FleetHooks | None = None

    def function(self) -> FunctionSpec:
        return FunctionSpec(
            handler=self.handler,
            environment=dict(self.environment),
            timeout_seconds=self.timeout_seconds,
            memory_mb=self.memory_mb,
            name=self.function_name,
            region=self.region,
            log_path=self.log_path,
        )


@dataclass
class FleetStats:
    """What the fleet did; ``api_calls`` are the function's own calls by operation."""

    invocations: int = 0
    records: int = 0
    succeeded: int = 0
    failed: int = 0
    continuations: int = 0
    function_errors: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    dlq: int = 0
    seconds: float = 0.0
    stopped_by: str = ""
    api_calls: Counter[str] = field(default_factory=Counter)
    poller_calls: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Every field in order; seconds rounded, calls sorted by operation."""
        return asdict(self) | {
            "seconds": round(self.seconds, 3),
            "api_calls": dict(sorted(self.api_calls.items())),
            "poller_calls": dict(sorted(self.poller_calls.items())),
        }


def lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """ReceiveMessage output -> the event Lambda's SQS event source passes the handler."""
    return {"Records": [_record(message, queue_arn, region) for message in messages]}


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    attribute: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [b64(raw) for raw in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = b64(value["BinaryValue"])
    return attribute


def _hop(body: str) -> int:
    try:
        hop = json.loads(body).get("hop", 0)
    except (ValueError, AttributeError):
        return 0
    return hop if isinstance(hop, int) and not isinstance(hop, bool) else 0


class Fleet:
    """Drives a queue with up to ``workers`` concurrent invocations until it drains."""

    def __init__(self, options: FleetOptions, sqs: SQSClient):
        if options.workers < 1:
            raise ValueError("workers must be at least 1")
        if not 1 <= options.batch_size <= BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{BATCH_SIZE}")
        self.options = options
        self.sqs = sqs
        self.stats = FleetStats()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._aborting = threading.Event()
        self._settled = threading.Event()  # an invocation ended: look at ``until`` now
        self._errors: list[BaseException] = []
        self._containers: set[FunctionHost] = set()
        attributes = sqs.get_queue_attributes(
            QueueUrl=options.queue_url, AttributeNames=["QueueArn", "RedrivePolicy"]
        )["Attributes"]
        self.queue_arn: str = attributes["QueueArn"]
        self.dlq_url = dlq_url_from_policy(sqs, options.queue_url, attributes.get("RedrivePolicy"))

    def run(
        self,
        *,
        until: Callable[[], bool] | None = None,
        on_tick: Callable[[FleetStats], None] | None = None,
    ) -> FleetStats:
        """Run until the queue drains or ``until()`` holds; Ctrl-C stops it cleanly."""
        started = time.monotonic()
        threads = [
            threading.Thread(target=self._slot, name=f"fleet-slot-{n}", daemon=True)
            for n in range(self.options.workers)
        ]
        for thread in threads:
            thread.start()
        empty_readings = 0
        try:
            while not self._errors:
                self._settled.wait(TICK_SECONDS)
                self._settled.clear()
                with self._lock:
                    self.stats.seconds = time.monotonic() - started
                if on_tick is not None:
                    on_tick(self.stats)
                if until is not None and until():
                    self.stats.stopped_by = "condition"
                    break
                empty_readings = empty_readings + 1 if self._looks_drained() else 0
                if empty_readings >= self.options.drained_readings:
                    self.stats.stopped_by = "drained"
                    break
        except BaseException:
            self._aborting.set()
            self.stats.stopped_by = "interrupted"
            raise
        finally:
            self._stopping.set()
            for thread in threads:
                thread.join()
            for container in list(self._containers):
                container.kill()
            self.stats.seconds = time.monotonic() - started
            try:
                self.stats.dlq = self._count_dlq()
            except (ClientError, BotoCoreError):
                if not (self._aborting.is_set() or self._errors):
                    raise
        if self._errors:
            raise self._errors[0]
        return self.stats

    # -- the poller of one concurrency slot --------------------------------------------

    def _slot(self) -> None:
        container: FunctionHost | None = None
        try:
            while not self._stopping.is_set():
                messages = self._receive()
                if messages:
                    container = self._invoke(container, messages)
                    self._settled.set()
                elif not self.options.poll_wait_seconds:
                    self._stopping.wait(SHORT_POLL_PAUSE_SECONDS)
        except BaseException as exc:
            if not self._aborting.is_set():
                self._errors.append(exc)
        finally:
            if container is not None:
                self._retire(container)

    def _receive(self) -> list[dict[str, Any]]:
        response = self._poller_call(
            "ReceiveMessage",
            lambda: self.sqs.receive_message(
                QueueUrl=self.options.queue_url,
                MaxNumberOfMessages=self.options.batch_size,
                WaitTimeSeconds=self.options.poll_wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ),
        )
        messages: list[dict[str, Any]] = response.get("Messages", []) if response else []
        return messages

    def _poller_call(self, operation: str, call: Callable[[], Any]) -> Any:
        """One SQS call of the poller, retried a few times when throttled or cut off.

        Giving up is safe: an undeleted message comes back after its visibility
        timeout, and the worker drops what it has already done.
        """

        def attempt() -> Any:
            self._count_poller(operation)
            return call()

        try:
            return self._poller_retry(operation).call(attempt, operation)
        except RetryableError:
            return None

    def _poller_retry(self, operation: str) -> RetryPolicy:
        # A stopping fleet does not wait out a back-off: the wait ends when it stops.
        return RetryPolicy(
            NoDeadline(),
            max_attempts=POLLER_ATTEMPTS,
            sleep=self._pause,
            on_retry=lambda: self._count_poller(f"{operation}.retried"),
        )

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _invoke(
        self, container: FunctionHost | None, messages: list[dict[str, Any]]
    ) -> FunctionHost | None:
        if container is None or not container.alive():
            if container is not None:
                self._retire(container)  # it died during its last invocation
            container = self._start_container()
            with self._lock:
                self._containers.add(container)
                self.stats.cold_starts += 1
        event = lambda_event(messages, self.queue_arn, self.options.region)
        with self._lock:
            self.stats.invocations += 1
            self.stats.records += len(messages)
        try:
            invocation = container.invoke(event, abort=self._aborting.is_set)
        except InvocationTimedOut as exc:
            self._retire(container)
            self._log(f"Task timed out: {exc}")
            with self._lock:
                self.stats.timeouts += int(not self._aborting.is_set())
                self.stats.failed += len(messages)
            self._retry_later(messages)
            return None
        except FunctionError:
            with self._lock:
                self.stats.function_errors += 1
                self.stats.failed += len(messages)
            self._retry_later(messages)
            return container
        failed_ids = self._failed_ids(invocation.result, messages)
        succeeded = [m for m in messages if m["MessageId"] not in failed_ids]
        failed = [m for m in messages if m["MessageId"] in failed_ids]
        kept = self.options.hooks.keep_delivered(succeeded) if self.options.hooks else []
        kept_ids = {m["MessageId"] for m in kept}
        self._delete([m for m in succeeded if m["MessageId"] not in kept_ids])
        self._retry_later(failed + kept)
        with self._lock:
            self.stats.api_calls.update(invocation.api_calls)
            self.stats.succeeded += len(succeeded)
            self.stats.failed += len(failed)
            self.stats.continuations += sum(1 for m in succeeded if _hop(m["Body"]) > 0)
        return container

    @staticmethod
    def _failed_ids(result: Any, messages: list[dict[str, Any]]) -> set[str]:
        """Lambda's rule: a malformed response, or an unknown id, fails the whole batch."""
        every = {m["MessageId"] for m in messages}
        if result is None:
            return set()
        if not isinstance(result, dict):
            return every
        failures = result.get("batchItemFailures", [])
        if not isinstance(failures, list):
            return every
        ids: set[str] = set()
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not isinstance(identifier, str) or identifier not in every:
                return every
            ids.add(identifier)
        return ids

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        response = self._poller_call(
            "DeleteMessageBatch",
            lambda: self.sqs.delete_message_batch(
                QueueUrl=self.options.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            ),
        )
        # A stale receipt handle (the message came back and was received again) fails
        # here; that delivery will be dropped by the worker as a duplicate.
        for _ in (response or {}).get("Failed", []):
            self._count_poller("DeleteMessageBatch.failed")

    def _retry_later(self, messages: list[dict[str, Any]]) -> None:
        if not messages or self.options.retry_delay is None:
            return
        delay = self.options.retry_delay
        self._poller_call(
            "ChangeMessageVisibilityBatch",
            lambda: self.sqs.change_message_visibility_batch(
                QueueUrl=self.options.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": delay}
                    for n, m in enumerate(messages)
                ],
            ),
        )

    def _start_container(self) -> FunctionHost:
        spec = self.options.function()
        if self.options.hooks is not None:
            return self.options.hooks.start_container(spec)
        return Container(spec)

    def _retire(self, container: FunctionHost) -> None:
        container.close() if container.alive() else container.kill()
        with self._lock:
            self._containers.discard(container)

    # -- queue state ---------------------------------------------------------------------

    def _looks_drained(self) -> bool:
        with self._lock:
            # Records handed to an invocation and not yet settled (deleted or left to
            # retry): their batch may still send a continuation.
            if self.stats.records > self.stats.succeeded + self.stats.failed:
                return False
        response = self._poller_call(
            "GetQueueAttributes",
            lambda: self.sqs.get_queue_attributes(
                QueueUrl=self.options.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            ),
        )
        if response is None:
            return False
        return all(int(value) == 0 for value in response["Attributes"].values())

    def _count_dlq(self) -> int:
        if self.dlq_url is None:
            return 0
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        self._count_poller("GetQueueAttributes")
        return sum(int(value) for value in attributes.values())

    def _log(self, message: str) -> None:
        """A line in the functions' log, as Lambda's own lines sit among the function's."""
        if self.options.log_path is None:
            return
        line = json.dumps({"level": "ERROR", "source": "fleet", "message": message})
        with self._lock, open(self.options.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def _count_poller(self, operation: str) -> None:
        with self._lock:
            self.stats.poller_calls[operation] += 1
