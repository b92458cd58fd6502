"""The set-up most integration tests share: a seeded table swept on
the ``stack`` fixture's moto, a run started by the planner handler and worked off by the
worker handler, and a look at the queues and the ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from scavenger.ledger import Ledger
from scavenger.runtime import lambda_runtime
from tests.conftest import LEDGER, Drain, Stack, configure_sweeps, drain, roomy_context
from tests.dataset import Truth, create_table, now, seed_table


def seeded_table(
    dynamodb: Any, table: str, shape: str = "composite_number_string", **seeding: Any
) -> Truth:
    """``table`` created and seeded around a cutoff 48 h ago (``seeding``: count and the
    rest of tests.dataset.seed_table's options)."""
    create_table(dynamodb, table, shape)
    return seed_table(dynamodb, table, shape, cutoff=now() - timedelta(hours=48), **seeding)


def seed_sweep(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    sweep: dict[str, Any],
    *,
    page_size: int | None = None,
    **seeding: Any,
) -> Truth:
    """``sweep``'s table seeded (:func:`seeded_table`), the sweep configured for the
    handlers, pages of ``page_size`` items if given."""
    truth = seeded_table(stack.dynamodb, sweep["table"], **seeding)
    if page_size is not None:
        monkeypatch.setenv("SCAVENGER_PAGE_SIZE", str(page_size))
    configure_sweeps(monkeypatch, sweep)
    return truth


def no_waits() -> None:
    """The runtime's retries and pacing sleep no more (the container's runtime is built
    on first use, after the sweeps are configured)."""
    lambda_runtime().sleep = lambda seconds: None


def start_run(sweep: str = "sweep") -> str:
    """The planner handler starts a run of ``sweep``; its id."""
    from planner.handler import handler as planner_handler

    (run,) = planner_handler({"sweep": sweep}, roomy_context())["runs"]
    no_waits()
    return str(run["run_id"])


def work(stack: Stack) -> Drain:
    """The worker handler drains the queue, with no waits and time to spare."""
    no_waits()
    return drain(stack, context_factory=roomy_context)


def ledger(stack: Stack) -> Ledger:
    return Ledger(stack.dynamodb, LEDGER)


def queue_size(stack: Stack, url: str) -> int:
    """Messages on the queue at ``url``: visible and in flight."""
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


class Crash(BaseException):
    """The process dies here: nothing after it runs, no handler catches it."""
