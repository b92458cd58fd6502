import pytest

from scavenger.plan import PlanRequest, new_run_id
from scavenger.sizing import ITEMS_PER_SEGMENT, auto_segments


def test_scheduled_event_plans_every_sweep():
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert PlanRequest.from_event(event) == PlanRequest()


def test_manual_event_names_one_sweep():
    assert PlanRequest.from_event({"sweep": "s", "dry_run": True}) == PlanRequest("s", True)


@pytest.mark.parametrize(
    "event", [[], {"sweep": 3}, {"dry_run": "yes"}, {"sweep": "s", "colour": "red"}]
)
def test_bad_planner_events_are_refused(event):
    with pytest.raises(ValueError, match="planner event"):
        PlanRequest.from_event(event)


@pytest.mark.parametrize(
    ("items", "size", "expected"),
    [
        (0, 0, 1),
        (ITEMS_PER_SEGMENT, 0, 1),
        (ITEMS_PER_SEGMENT + 1, 0, 2),
        (130_000, 0, 13),
        (10, 10 * 1024**3, 40),
        (10**13, 0, 1_000_000),
    ],
)
def test_auto_segments_keep_each_segment_small(items, size, expected):
    assert auto_segments(items, size) == expected


def test_run_ids_sort_by_start_time_and_do_not_collide():
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 23, 2, 0, 0, tzinfo=UTC)
    ids = {new_run_id(moment) for _ in range(50)}
    assert all(run_id.startswith("20261123T020000Z-") for run_id in ids)
    assert len(ids) > 40
