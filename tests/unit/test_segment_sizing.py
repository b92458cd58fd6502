"""Segment sizing: without a write budget each segment aims at a share of a worker's
timeout, from the table's size and the delete path's measured rate; with one, the
segments are the workers the budget keeps busy at full speed."""

from __future__ import annotations

import math

import pytest

from scavenger.errors import ConfigError
from scavenger.records import Counts, RunRecord
from scavenger.sizing import (
    ITEMS_PER_SEGMENT,
    Fleet,
    measured_rate,
    measured_write_share,
    size_segments,
)


def test_an_unmeasured_table_gets_the_default_segments():
    sizing = size_segments(1_000_000_000, 0)

    assert sizing.items_per_segment == ITEMS_PER_SEGMENT
    assert sizing.segments == 100_000
    assert (sizing.rate_source, sizing.target_seconds_per_segment) == ("default", 150.0)


def test_a_faster_delete_path_makes_bigger_segments():
    sizing = size_segments(1_000_000_000, 0, items_per_worker_second=1_000, rate_source="run r")

    assert sizing.items_per_segment == 150_000
    assert sizing.segments == 6_667


def test_a_longer_worker_timeout_makes_bigger_segments():
    sizing = size_segments(
        1_000_000, 0, items_per_worker_second=100, fleet=Fleet(worker_timeout_seconds=900)
    )

    assert (sizing.items_per_segment, sizing.segments) == (45_000, 23)


@pytest.mark.parametrize(
    ("budget", "rate", "segments"),
    [
        (2_000, 800, 3),  # the original table at the defaults: half of 4,000 units/s
        (4_000, 800, 5),  # a budget equal to a new on-demand table's write rate
        (2_000, 66.667, 30),  # the item path's slower workers: more of them
        (400, 1_000, 1),  # one worker at full speed uses more than the budget
    ],
)
def test_a_write_budget_gets_as_many_segments_as_workers_it_keeps_busy(budget, rate, segments):
    """Just enough workers to use the budget: one fewer could not reach it at full speed,
    so the workers wait for their share (billed) at most one worker's worth between them."""
    sizing = size_segments(130_000, 0, items_per_worker_second=rate, write_units_per_second=budget)

    assert (sizing.rule, sizing.budget_workers, sizing.segments) == ("budget", segments, segments)
    share = budget / min(sizing.segments, Fleet().max_concurrency)
    assert share <= rate
    assert sizing.segments == 1 or budget / (sizing.segments - 1) > rate


def test_a_budget_counts_the_write_units_each_scanned_item_costs():
    """A previous run measured half a write unit per scanned item (most items fresh):
    twice the workers keep the same budget busy."""
    sizing = size_segments(
        130_000,
        0,
        items_per_worker_second=800,
        write_units_per_second=4_000,
        write_units_per_item=0.5,
    )

    assert sizing.segments == 10


def test_a_budget_never_makes_tiny_or_endless_segments():
    small = size_segments(60, 0, items_per_worker_second=800, write_units_per_second=2_000)
    huge = size_segments(
        1_000_000_000, 0, items_per_worker_second=800, write_units_per_second=2_000
    )

    assert small.segments == 1  # at least MIN_ITEMS_PER_SEGMENT items a segment
    # At most MAX_INVOCATIONS_PER_SEGMENT timeouts of work: 800 x 300 s x 100 items.
    assert huge.segments == math.ceil(1_000_000_000 / 24_000_000) == 42


def test_a_budget_past_what_the_fleet_can_use_keeps_segments_by_time():
    """40,000 units/s would keep 600 item-path workers busy; MaximumConcurrency is 50,
    so no worker is paced whatever the segments: they stay sized by time."""
    sizing = size_segments(
        1_000_000_000, 0, items_per_worker_second=66.667, write_units_per_second=40_000
    )

    assert (sizing.budget_workers, sizing.segments) == (600, 100_000)
    assert size_segments(130_000, 0, write_units_per_second=40_000).segments == 50


def test_segments_stay_under_their_byte_bound_and_the_maximum():
    assert size_segments(10, 10 * 1024**3).segments == 40
    assert size_segments(10**13, 0).segments == 1_000_000


def test_the_rate_is_measured_from_the_last_finished_real_run():
    def run(**changes):
        fields = {
            "run_id": "r1",
            "sweep": "s",
            "table": "t",
            "total_segments": 4,
            "cutoff": "c",
            "dry_run": False,
            "created_at": "a",
            "status": "done",
            "totals": Counts(scanned=40_000, worker_ms=100_000),
        }
        return RunRecord(**(fields | changes))

    assert measured_rate(run()) == (400.0, "run r1")
    assert measured_rate(run(dry_run=True)) is None  # deleted nothing: too fast
    assert measured_rate(run(status="running", totals=None)) is None
    assert measured_rate(run(totals=Counts())) is None
    assert measured_rate(None) is None
    assert measured_write_share(run()) == 0.0  # deleted nothing: the budget binds nothing
    assert measured_write_share(run(totals=Counts(scanned=400, deleted=300, worker_ms=1))) == 0.75
    assert (
        measured_write_share(
            run(totals=Counts(scanned=400, deleted=300, write_units=600.0, worker_ms=1))
        )
        == 1.5
    )  # an index doubles each delete's writes
    assert measured_write_share(None) is None


def test_the_fleet_comes_from_the_planner_environment():
    env = {"SCAVENGER_WORKER_TIMEOUT_SECONDS": "900", "SCAVENGER_MAX_CONCURRENCY": "1000"}

    assert Fleet.from_env(env) == Fleet(900, 1000)
    assert Fleet.from_env({}) == Fleet(300, 50)
    with pytest.raises(ConfigError, match="SCAVENGER_MAX_CONCURRENCY"):
        Fleet.from_env({"SCAVENGER_MAX_CONCURRENCY": "0"})
