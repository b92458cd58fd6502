"""Planner to drained queue, with real boto3 calls against moto, on each key shape."""

from __future__ import annotations

import pytest

from planner.handler import handler as planner_handler
from scavenger.ledger import Ledger
from tests.conftest import LEDGER, configure_sweeps, drain, roomy_context
from tests.dataset import create_table, now, remaining_keys, seed_table
from tests.runs import seeded_table
from tests.sweeps import COMPLETED, sweep_spec

pytestmark = pytest.mark.integration

WHERE = COMPLETED


def sweep_config(age_format: str = "iso8601", segments: int = 4, **extra):
    return sweep_spec(age_format=age_format, segments=segments, **extra)


def run_sweep(stack, monkeypatch, config, *, page_size=7, context_factory=roomy_context):
    monkeypatch.setenv("SCAVENGER_PAGE_SIZE", str(page_size))
    configure_sweeps(monkeypatch, config)
    result = planner_handler({"sweep": config["name"]}, roomy_context())
    (run,) = result["runs"]
    assert run["started"], run
    drained = drain(stack, context_factory=context_factory)
    return Ledger(stack.dynamodb, LEDGER).get_run(run["run_id"]), drained


@pytest.mark.parametrize("shape", ["hash_string", "composite_number_string", "hash_binary"])
def test_exactly_the_expired_items_are_deleted_on_every_key_shape(
    stack, monkeypatch, moto_binary_segments, shape
):
    truth = seeded_table(stack.dynamodb, "Swept", shape, count=300)

    run, _ = run_sweep(stack, monkeypatch, sweep_config(**WHERE))

    assert remaining_keys(stack.dynamodb, "Swept") == truth.kept
    assert run.status == "done"
    assert run.totals.deleted == len(truth.doomed)
    assert run.totals.expired == len(truth.doomed)
    assert run.totals.unparseable == truth.unparseable
    assert run.totals.scanned == truth.total
    assert run.totals.skipped == 0
    # what it cost is recorded too: one message per segment here, capacity as reported
    assert run.totals.messages == run.total_segments
    assert run.totals.pages == sum(
        s.checkpoints for s in Ledger(stack.dynamodb, LEDGER).list_segments(run.run_id)
    )
    assert run.totals.read_units > 0 and run.totals.write_units > 0


@pytest.mark.parametrize("age_format", ["epoch_seconds", "epoch_millis"])
def test_epoch_ages_are_swept_exactly(stack, monkeypatch, age_format):
    truth = seeded_table(
        stack.dynamodb, "Swept", "hash_string", count=200, age_format=age_format, with_where=False
    )

    run, _ = run_sweep(stack, monkeypatch, sweep_config(age_format, segments=3))

    assert remaining_keys(stack.dynamodb, "Swept") == truth.kept
    assert run.totals.deleted == len(truth.doomed)
    assert run.totals.unparseable == truth.unparseable


def test_dry_run_counts_and_deletes_nothing(stack, monkeypatch):
    truth = seeded_table(stack.dynamodb, "Swept", count=150)

    run, _ = run_sweep(stack, monkeypatch, sweep_config(dry_run=True, **WHERE))

    assert remaining_keys(stack.dynamodb, "Swept") == set(truth.keys)
    assert run.dry_run
    assert run.totals.expired == len(truth.doomed)
    assert run.totals.deleted == 0


def test_a_sweep_is_not_started_twice_while_its_run_is_running(stack, monkeypatch):
    create_table(stack.dynamodb, "Swept", "hash_string")
    configure_sweeps(monkeypatch, sweep_config())
    first = planner_handler({"sweep": "sweep"}, roomy_context())["runs"][0]

    second = planner_handler({"sweep": "sweep"}, roomy_context())["runs"][0]

    assert first["started"] and not second["started"]
    assert first["run_id"] in second["reason"]
    drain(stack, context_factory=roomy_context)
    third = planner_handler({"sweep": "sweep"}, roomy_context())["runs"][0]
    assert third["started"]


def test_auto_segments_come_from_the_table_size(stack, monkeypatch):
    create_table(stack.dynamodb, "Swept", "hash_string")
    seed_table(stack.dynamodb, "Swept", "hash_string", count=30, cutoff=now(), with_where=False)
    run, _ = run_sweep(stack, monkeypatch, sweep_config(segments="auto"))
    assert run.total_segments == 1
    assert run.totals.scanned == 30
