"""Segment sizing by time: each segment aims at a share of a worker's timeout, from
the table's size and the delete path's measured rate, capped by the write budget
shared by MaximumConcurrency workers."""

from __future__ import annotations

import pytest

from scavenger.errors import ConfigError
from scavenger.plan import (
    ITEMS_PER_SEGMENT,
    Fleet,
    measured_rate,
    size_segments,
)
from scavenger.records import Counts, RunRecord


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


def test_a_write_budget_shared_by_the_fleet_makes_smaller_segments():
    """400 write units/s over 50 workers: 8 deletes a second each, at most."""
    sizing = size_segments(1_000_000, 0, items_per_worker_second=1_000, write_units_per_second=400)

    assert sizing.items_per_worker_second == 8
    assert (sizing.items_per_segment, sizing.segments) == (1_200, 834)


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


def test_the_fleet_comes_from_the_planner_environment():
    env = {"SCAVENGER_WORKER_TIMEOUT_SECONDS": "900", "SCAVENGER_MAX_CONCURRENCY": "1000"}

    assert Fleet.from_env(env) == Fleet(900, 1000)
    assert Fleet.from_env({}) == Fleet(300, 50)
    with pytest.raises(ConfigError, match="SCAVENGER_MAX_CONCURRENCY"):
        Fleet.from_env({"SCAVENGER_MAX_CONCURRENCY": "0"})
