"""Hostile queue bodies: any text, any JSON, anything near the segment-message schema.

A body either parses into a valid SegmentMessage or raises InvalidMessage; through the
worker handler, a poison record is a batch item failure and no AWS call is made.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scavenger.batch import handle
from scavenger.config import parse_sweeps
from scavenger.errors import InvalidMessage
from scavenger.message import SegmentMessage
from scavenger.runtime import Runtime
from scavenger.settings import Settings

CUTOFF = datetime(2026, 11, 21, 2, 0, 0, tzinfo=UTC)
GOOD: dict[str, Any] = json.loads(
    SegmentMessage("20261123T020000Z-3f9c", "sweep", "Workers", 1, 4, CUTOFF).to_json()
)
MAX_ERROR = 400

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
plausible = {
    "v": st.sampled_from([1, 2, 0, True, 1.0, "1", None]),
    "run_id": st.sampled_from(["r", "", "x" * 129, "run\n", "\u00fc"]),
    "sweep": st.sampled_from(["sweep", "Sweep", "s" * 41, "a#b", "", "sweep\n"]),
    "table": st.sampled_from(["Workers", "ab", "T" * 256, "Work ers"]),
    "segment": st.sampled_from([0, 3, 4, -1, True, 1.5, 10**30]),
    "total_segments": st.sampled_from([1, 4, 0, 1_000_001, False, "4"]),
    "cutoff": st.sampled_from(
        [
            "2026-11-21T02:00:00Z",
            "2026-11-21",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-13-01T00:00:00Z",
            "yesterday",
            "",
        ]
    ),
    "cursor": st.sampled_from(
        [
            None,
            {},
            {"id": {"S": "k"}},
            {"id": {"S": ""}},
            {"id": {"N": "12.5"}},
            {"id": {"N": "NaN"}},
            {"id": {"N": "abc"}},
            {"id": {"B": "AAE="}},
            {"id": {"B": "!!"}},
            {"id": {"S": "a", "N": "1"}},
            {"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}},
            {"": {"S": "1"}},
            {"id": {"BOOL": True}},
            {"id": "k"},
        ]
    ),
    "hop": st.sampled_from([0, 5, -1, 10**9 + 1, None]),
    "dry_run": st.sampled_from([False, True, 0, "false", None]),
}


@st.composite
def near_valid_bodies(draw: st.DrawFn) -> str:
    body = dict(GOOD)
    for name in draw(st.lists(st.sampled_from(sorted(plausible)), max_size=3, unique=True)):
        body[name] = draw(plausible[name] | json_values)
    if draw(st.integers(0, 6)) == 0:
        body.pop(draw(st.sampled_from(sorted(body))))
    if draw(st.integers(0, 6)) == 0:
        body[draw(st.text(max_size=5))] = draw(json_values)
    return json.dumps(body)


def parse_or_poison(body: str) -> SegmentMessage | None:
    try:
        message = SegmentMessage.parse(body)
    except InvalidMessage as error:
        assert "\n" not in str(error) and len(str(error)) < MAX_ERROR, str(error)
        return None
    assert 0 <= message.segment < message.total_segments
    assert message.cutoff.tzinfo is not None
    assert SegmentMessage.parse(message.to_json()) == message
    return message


@settings(max_examples=250)
@given(near_valid_bodies())
def test_near_valid_bodies_parse_or_are_poison(body: str) -> None:
    parse_or_poison(body)


@settings(max_examples=200)
@given(json_values.map(json.dumps))
def test_any_json_body_parses_or_is_poison(body: str) -> None:
    parse_or_poison(body)


@settings(max_examples=200)
@given(st.text(max_size=300))
@example("[" * 200_000)
@example('{"v": ' + "1" * 5000 + "}")
@example('{"v": NaN}')
@example('{"v": "\\ud800"}')
@example("")
def test_any_text_body_parses_or_is_poison(body: str) -> None:
    parse_or_poison(body)


@pytest.mark.parametrize(
    "changes",
    [
        {"v": True},
        {"v": 1.0},
        {"cutoff": "0001-01-01T00:00:00+01:00"},
        {"cursor": {"id": {"N": "not a number"}}},
        {"cursor": {"id": {"S": ""}}},
        {"sweep": "sweep\n"},
        {"table": "Work ers"},
        {"run_id": "r" * 129},
    ],
)
def test_values_that_would_fail_later_are_poison_at_once(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidMessage):
        SegmentMessage.parse(json.dumps({**GOOD, **changes}))


def test_a_huge_field_is_quoted_briefly_in_the_poison_error() -> None:
    body = json.dumps({**GOOD, "cutoff": "x" * 200_000})
    assert parse_or_poison(body) is None


class UntouchableClient:
    """Any AWS call is recorded (and fails): a poison record must make none."""

    def __init__(self, calls: list[str]):
        self.calls = calls

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        raise AssertionError(f"AWS call {name} for a poison record")


class Context:
    aws_request_id = "poison-test"
    function_name = "scavenger-worker"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:scavenger-worker"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def record(index: int, body: str, group: str) -> dict[str, Any]:
    return {
        "messageId": f"m-{index}",
        "receiptHandle": f"h-{index}",
        "body": body,
        "attributes": {"MessageGroupId": group, "ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:scavenger.fifo",
        "awsRegion": "us-east-1",
    }


poison_bodies = (
    st.text(max_size=100)
    | json_values.map(json.dumps)
    | near_valid_bodies().filter(lambda body: parse_or_poison(body) is None)
).filter(lambda body: parse_or_poison(body) is None)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(poison_bodies, st.sampled_from(["sweep#0", "sweep#1", "x"])),
        min_size=1,
        max_size=10,
    )
)
def test_poison_records_fail_alone_and_touch_nothing(records: list[tuple[str, str]]) -> None:
    calls: list[str] = []
    runtime = Runtime(
        settings=Settings(queue_url="https://sqs.invalid/q.fifo", ledger_table="Ledger"),
        sweeps=parse_sweeps(
            [
                {
                    "name": "sweep",
                    "table": "Workers",
                    "age_attribute": "ts",
                    "age_format": "iso8601",
                    "max_age": "48h",
                }
            ]
        ),
        dynamodb=UntouchableClient(calls),
        sqs=UntouchableClient(calls),
        sleep=lambda _: None,
    )
    event = {"Records": [record(i, body, group) for i, (body, group) in enumerate(records)]}

    response = handle(event, Context(), runtime)

    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    assert failed == {f"m-{i}" for i in range(len(records))}
    assert calls == []
