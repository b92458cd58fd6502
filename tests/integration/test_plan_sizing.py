"""`plan` sizes "auto" segments from the sweep's measured rate and shows the numbers."""

from __future__ import annotations

import json

import pytest

from planner.handler import handler as planner_handler
from scavenger.ledger import Ledger
from scavenger.tools import cli
from tests.conftest import LEDGER, drain, roomy_context
from tests.runs import no_waits, seed_sweep
from tests.sweeps import sweep_spec

pytestmark = pytest.mark.integration

SWEEP = sweep_spec(segments="auto")


@pytest.fixture
def seeded(stack, monkeypatch):
    seed_sweep(stack, monkeypatch, SWEEP, count=60, shape="hash_string")
    no_waits()


def test_the_second_run_is_sized_by_the_rate_the_first_one_measured(stack, seeded):
    (first,) = planner_handler({"sweep": "sweep"}, roomy_context())["runs"]
    assert first["sizing"]["rate_source"] == "default"
    drain(stack, context_factory=roomy_context)
    done = Ledger(stack.dynamodb, LEDGER).get_run(first["run_id"])
    rate = done.totals.scanned / (done.totals.worker_ms / 1000)

    (second,) = planner_handler({"sweep": "sweep"}, roomy_context())["runs"]

    assert second["sizing"]["rate_source"] == f"run {first['run_id']}"
    assert second["sizing"]["items_per_worker_second"] == pytest.approx(rate, rel=1e-3)
    assert second["sizing"]["items_per_segment"] == int(rate * 150)


def test_plan_dry_run_shows_the_numbers_it_used(stack, seeded, capsys, monkeypatch):
    monkeypatch.setenv("SCAVENGER_WORKER_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("SCAVENGER_MAX_CONCURRENCY", "20")

    code = cli.main(["plan", "--dry-run", "--json"])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    sizing = json.loads(captured.out.splitlines()[-1])["runs"][0]["sizing"]
    assert sizing["worker_timeout_seconds"] == 120 and sizing["max_concurrency"] == 20
    assert sizing["target_seconds_per_segment"] == 60
    shown = " ".join((captured.out + captured.err).split())
    assert "auto segments:" in shown and "of the 120 s worker timeout" in shown
    assert "items per worker-second (default)" in shown
