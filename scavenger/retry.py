"""Retry policy: exponential backoff with jitter, bounded by the time budget.

Only RetryableError (throttling, 5xx, dropped connections) is retried, and every
retry waits first: throttling (Throttled) backs off from a longer base than a
transient fault. The first attempt runs without tenacity so the common path costs
nothing extra.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from scavenger.errors import RetryableError, Throttled, Unprocessed, classify
from scavenger.observability import logger

T = TypeVar("T")

MAX_ATTEMPTS = 10
BASE_WAIT_SECONDS = 0.05
# Throttling says "slow down": its waits start (and stay) twice as long.
THROTTLED_BASE_WAIT_SECONDS = 0.1
MAX_WAIT_SECONDS = 5.0


class Budget(Protocol):
    def remaining_seconds(self) -> float: ...


class Deadline:
    """Time left in this invocation, from the Lambda context (or any clock)."""

    def __init__(self, remaining_millis: Callable[[], int], reserve_seconds: float = 0.0):
        self._remaining_millis = remaining_millis
        self.reserve_seconds = reserve_seconds

    def remaining_seconds(self) -> float:
        return self._remaining_millis() / 1000.0 - self.reserve_seconds


class TimeShares:
    """Splits an invocation's time between the records of its batch.

    Each record may use an equal share of what is left once a safety margin is kept
    for every record still to come, so one segment cannot starve the others and the
    last record still has time to checkpoint and continue.
    """

    def __init__(self, invocation: Budget, records: int, margin: float):
        self.invocation = invocation
        self.records_left = max(records, 1)
        self.margin = margin

    def next(self) -> RecordBudget:
        remaining = self.invocation.remaining_seconds()
        spare = max(0.0, remaining - self.records_left * self.margin)
        own = self.margin + spare / self.records_left
        self.records_left = max(self.records_left - 1, 1)
        return RecordBudget(self.invocation, reserved=max(0.0, remaining - own))


class RecordBudget:
    """One record's budget: the invocation's time less what is kept for later records."""

    def __init__(self, invocation: Budget, reserved: float):
        self.invocation = invocation
        self.reserved = reserved

    def remaining_seconds(self) -> float:
        return self.invocation.remaining_seconds() - self.reserved

    def invocation_seconds(self) -> float:
        return self.invocation.remaining_seconds()


class NoDeadline:
    """A budget that never runs out (CLI commands)."""

    def remaining_seconds(self) -> float:
        return float("inf")


class stop_when_budget_spent(stop_base):
    def __init__(self, budget: Budget, floor_seconds: float):
        self.budget = budget
        self.floor_seconds = floor_seconds

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.budget.remaining_seconds() <= self.floor_seconds


class wait_within_budget(wait_base):
    """Jittered exponential wait, at least one base wait (a retry never runs at once),
    longer after throttling, and never sleeping past the budget's floor."""

    def __init__(self, budget: Budget, floor_seconds: float):
        self.budget = budget
        self.floor_seconds = floor_seconds
        self.transient = wait_random_exponential(multiplier=BASE_WAIT_SECONDS, max=MAX_WAIT_SECONDS)
        self.throttled = wait_random_exponential(
            multiplier=THROTTLED_BASE_WAIT_SECONDS, max=MAX_WAIT_SECONDS
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        throttled = isinstance(error, Throttled)
        jitter = self.throttled if throttled else self.transient
        least = THROTTLED_BASE_WAIT_SECONDS if throttled else BASE_WAIT_SECONDS
        room = self.budget.remaining_seconds() - self.floor_seconds
        return max(0.0, min(max(least, jitter(retry_state)), room))


def aws_call(operation: Callable[[], T]) -> T:
    """Run one AWS call, translating botocore errors into domain errors."""
    try:
        return operation()
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc) from exc


class RetryPolicy:
    """Retries AWS calls on RetryableError within a budget; counts each retry.

    ``retry_on`` narrows what is retried (a loop over a batch call's unprocessed
    part retries only its own Throttled subclass, not what the call itself raised).
    """

    def __init__(
        self,
        budget: Budget,
        *,
        floor_seconds: float = 0.0,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] | None = None,
        retry_on: type[RetryableError] = RetryableError,
    ):
        self.budget = budget
        self.floor_seconds = floor_seconds
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.on_retry = on_retry
        self.retry_on = retry_on
        self._retrying = Retrying(
            stop=stop_after_attempt(max_attempts) | stop_when_budget_spent(budget, floor_seconds),
            wait=wait_within_budget(budget, floor_seconds),
            retry=retry_if_exception_type(retry_on),
            sleep=sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        self._what = ""

    def for_unprocessed(self, max_attempts: int) -> RetryPolicy:
        """This policy's budget, sleep and counter, retrying only what a batch call left
        Unprocessed (what the call itself raised is this policy's to retry)."""
        return RetryPolicy(
            self.budget,
            floor_seconds=self.floor_seconds,
            max_attempts=max_attempts,
            sleep=self.sleep,
            on_retry=self.on_retry,
            retry_on=Unprocessed,
        )

    def _before_sleep(self, state: RetryCallState) -> None:
        self._note_retry(self._what, state.outcome.exception() if state.outcome else None)

    def call(self, operation: Callable[[], T], what: str) -> T:
        # The first attempt skips tenacity (the common path costs nothing extra). After
        # a retryable failure, tenacity replays that failure as its own first attempt,
        # so it counts, and waits, before every retry.
        try:
            return aws_call(operation)
        except self.retry_on as first:
            failed: RetryableError | None = first

        def again() -> T:
            nonlocal failed
            if failed is not None:
                replayed, failed = failed, None
                raise replayed
            return aws_call(operation)

        self._what = what
        result: T = self._retrying(again)
        return result

    def _note_retry(self, what: str, error: BaseException | None) -> None:
        if self.on_retry:
            self.on_retry()
        logger.info(
            "retrying",
            extra={
                "operation": what,
                "error": str(error),
                "throttled": isinstance(error, Throttled),
            },
        )
