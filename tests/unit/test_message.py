import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scavenger.errors import InvalidMessage
from scavenger.message import SegmentMessage
from tests.sweeps import DOCUMENTED_MESSAGE

CUTOFF = datetime(2026, 11, 21, 2, 0, 0, tzinfo=UTC)

keys = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(
        st.builds(lambda s: {"S": s}, st.text(min_size=1, max_size=20)),
        st.builds(lambda n: {"N": str(n)}, st.integers()),
        st.builds(lambda b: {"B": b}, st.binary(min_size=1, max_size=16)),
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def messages(draw):
    total = draw(st.integers(min_value=1, max_value=1_000_000))
    return SegmentMessage(
        run_id=draw(st.text(min_size=1, max_size=30)),
        sweep=draw(st.from_regex(r"[a-z0-9][a-z0-9-]{0,39}", fullmatch=True)),
        table=draw(st.from_regex(r"[A-Za-z0-9_.-]{3,20}", fullmatch=True)),
        segment=draw(st.integers(min_value=0, max_value=total - 1)),
        total_segments=total,
        cutoff=CUTOFF,
        cursor=draw(st.none() | keys),
        hop=draw(st.integers(min_value=0, max_value=10_000)),
        dry_run=draw(st.booleans()),
    )


@given(messages())
def test_any_message_survives_a_round_trip(message):
    assert SegmentMessage.parse(message.to_json()) == message


def test_body_matches_the_documented_contract():
    message = SegmentMessage("20261123T020000Z-3f9c", "stale-workers", "Workers", 7, 64, CUTOFF)
    assert json.loads(message.to_json()) == DOCUMENTED_MESSAGE
    assert message.group_id == "stale-workers#7"


def test_deduplication_id_depends_on_run_segment_hop_and_nonce():
    message = SegmentMessage("run", "s", "Workers", 1, 4, CUTOFF)
    ids = {
        message.deduplication_id(),
        message.continuation(None).deduplication_id(),
        SegmentMessage("run", "s", "Workers", 2, 4, CUTOFF).deduplication_id(),
        SegmentMessage("run2", "s", "Workers", 1, 4, CUTOFF).deduplication_id(),
        message.deduplication_id("requeue-1"),
    }
    assert len(ids) == 5
    assert (
        message.deduplication_id()
        == SegmentMessage("run", "s", "T", 1, 4, CUTOFF).deduplication_id()
    )
    assert all(len(i) <= 128 for i in ids)


def test_continuation_keeps_the_group_and_raises_the_hop():
    message = SegmentMessage("run", "s", "Workers", 3, 4, CUTOFF, hop=2)
    follow = message.continuation({"id": {"S": "k"}})
    assert (follow.group_id, follow.hop, follow.cursor) == (message.group_id, 3, {"id": {"S": "k"}})


GOOD = json.loads(SegmentMessage("run", "s", "Workers", 1, 4, CUTOFF).to_json())


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({**GOOD, "v": 2}),
        json.dumps({**GOOD, "segment": 4}),
        json.dumps({**GOOD, "segment": -1}),
        json.dumps({**GOOD, "total_segments": 0}),
        json.dumps({**GOOD, "hop": "1"}),
        json.dumps({**GOOD, "dry_run": "no"}),
        json.dumps({**GOOD, "cutoff": "yesterday"}),
        json.dumps({**GOOD, "cursor": {"id": {"X": "1"}}}),
        json.dumps({**GOOD, "cursor": {"id": {"B": "!!!"}}}),
        json.dumps({**GOOD, "extra": 1}),
        json.dumps({k: v for k, v in GOOD.items() if k != "run_id"}),
    ],
)
def test_anything_else_is_a_poison_message(body):
    with pytest.raises(InvalidMessage):
        SegmentMessage.parse(body)
