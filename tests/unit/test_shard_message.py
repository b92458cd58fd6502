"""The plan-shard message: what a large run's planner sends instead of one message
per segment; the segment message schema is unchanged beside it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from scavenger.errors import InvalidMessage
from scavenger.message import PlanShardMessage, SegmentMessage

CUTOFF = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
SHARD = PlanShardMessage(
    "20261123T020000Z-3f9c", "stale", "Workers", 5000, CUTOFF, False, 1000, 1000
)


def test_a_shard_message_round_trips():
    assert PlanShardMessage.parse_if_shard(SHARD.to_json()) == SHARD


def test_a_shard_carries_the_write_budget_share_to_each_segment_message():
    """The planner shares the budget among min(segments, MaximumConcurrency) workers;
    a shard passes that share on unchanged to every segment message it sends."""
    shard = PlanShardMessage.parse_if_shard(json.dumps(json.loads(SHARD.to_json()) | {"wcu": 40}))

    assert shard is not None and shard.wcu == 40.0
    assert PlanShardMessage.parse_if_shard(shard.to_json()) == shard
    assert {shard.segment_message(n).wcu for n in shard.segments()} == {40.0}
    assert "wcu" not in json.loads(SHARD.to_json())  # no budget: no share, as before
    assert SHARD.segment_message(1000).wcu is None


def test_a_segment_message_is_not_taken_for_a_shard():
    segment = SegmentMessage("r", "stale", "Workers", 3, 8, CUTOFF)

    assert PlanShardMessage.parse_if_shard(segment.to_json()) is None
    assert PlanShardMessage.parse_if_shard("not json, plan_shard") is None


def test_the_shard_plans_its_own_range_in_its_own_group():
    assert list(SHARD.segments()) == list(range(1000, 2000))
    assert SHARD.segment_message(1500) == SegmentMessage(
        "20261123T020000Z-3f9c", "stale", "Workers", 1500, 5000, CUTOFF
    )
    assert SHARD.group_id == "stale#plan-1000" != SHARD.segment_message(1000).group_id
    assert SHARD.deduplication_id() != SHARD.segment_message(1000).deduplication_id()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"count": 4001}, "count"),
        ({"first": 5000}, "first"),
        ({"count": 0}, "count"),
        ({"extra": 1}, "unexpected"),
        ({"total_segments": 0}, "total_segments"),
        ({"sweep": "Bad Name"}, "sweep"),
        ({"wcu": 0}, "wcu"),
        ({"wcu": "40"}, "wcu"),
    ],
)
def test_a_malformed_shard_message_is_poison(change, reason):
    body = json.loads(SHARD.to_json()) | change

    with pytest.raises(InvalidMessage, match=reason):
        PlanShardMessage.parse_if_shard(json.dumps(body))
