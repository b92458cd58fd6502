from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scavenger.config import Sweep, parse_sweeps
from scavenger.expiry import (
    Age,
    AgeRule,
    DeleteStatement,
    Expressions,
    format_instant,
    to_attribute_value,
    where_attributes,
)
from tests.sweeps import sweep_spec

CUTOFF = datetime(2026, 11, 21, 2, 0, 0, tzinfo=UTC)


def iso_rule():
    return AgeRule("ts", "iso8601", CUTOFF)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-21T02:00:00Z", Age.FRESH),  # exactly at the cutoff is not expired
        ("2026-11-21T01:59:59Z", Age.EXPIRED),
        ("2026-11-21T01:59:59.999999Z", Age.EXPIRED),
        ("2026-11-21T01:59:59.9999999Z", Age.EXPIRED),  # more than 6 digits
        ("2026-11-21T02:00:00.000001Z", Age.FRESH),
        ("2026-11-21T04:00:00+02:00", Age.FRESH),  # same instant as the cutoff
        ("2026-11-21T03:59:59+02:00", Age.EXPIRED),
        ("2026-11-20T21:00:00-05:00", Age.FRESH),  # 02:00Z
        ("2026-11-20T20:59:59-05:00", Age.EXPIRED),
        ("2026-11-21T07:29:59.5+05:30", Age.EXPIRED),
        ("2026-11-21T02:00:00", Age.FRESH),  # no offset: taken as UTC
        ("2026-11-21T01:00:00", Age.EXPIRED),
        ("not a date", Age.UNPARSEABLE),
        ("", Age.UNPARSEABLE),
        ("2026-11-21T25:00:00Z", Age.UNPARSEABLE),
    ],
)
def test_iso8601_with_any_offset_compares_by_instant(value, expected):
    assert iso_rule().classify({"ts": {"S": value}}) is expected


@pytest.mark.parametrize(
    "item",
    [{}, {"ts": {"N": "1"}}, {"ts": {"NULL": True}}, {"ts": {"SS": ["x"]}}, {"ts": {"BOOL": True}}],
)
def test_missing_or_wrong_type_is_unparseable(item):
    assert iso_rule().classify(item) is Age.UNPARSEABLE


@pytest.mark.parametrize(
    ("age_format", "value", "expected"),
    [
        ("epoch_seconds", str(int(CUTOFF.timestamp())), Age.FRESH),
        ("epoch_seconds", str(int(CUTOFF.timestamp()) - 1), Age.EXPIRED),
        ("epoch_seconds", f"{int(CUTOFF.timestamp()) - 1}.999999999", Age.EXPIRED),
        ("epoch_seconds", "1e300", Age.FRESH),
        ("epoch_seconds", "-5", Age.EXPIRED),
        ("epoch_millis", str(int(CUTOFF.timestamp()) * 1000), Age.FRESH),
        ("epoch_millis", str(int(CUTOFF.timestamp()) * 1000 - 1), Age.EXPIRED),
    ],
)
def test_epoch_values_compare_exactly_at_the_boundary(age_format, value, expected):
    rule = AgeRule("ts", age_format, CUTOFF)
    assert rule.classify({"ts": {"N": value}}) is expected


def test_epoch_as_string_is_unparseable():
    rule = AgeRule("ts", "epoch_seconds", CUTOFF)
    assert rule.classify({"ts": {"S": "1"}}) is Age.UNPARSEABLE


@given(
    delta=st.integers(min_value=-(10**9), max_value=10**9),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_any_rendering_of_an_instant_classifies_like_the_instant(delta, offset_minutes):
    instant = CUTOFF + timedelta(microseconds=delta)
    zone = timezone(timedelta(minutes=offset_minutes))
    text = instant.astimezone(zone).isoformat()
    expected = Age.EXPIRED if delta < 0 else Age.FRESH
    assert iso_rule().classify({"ts": {"S": text}}) is expected


@given(delta_micros=st.integers(min_value=-(10**12), max_value=10**12))
def test_epoch_millis_with_fractions_classify_like_the_instant(delta_micros):
    cutoff_ms = int(CUTOFF.timestamp()) * 1000
    whole, fraction = divmod(delta_micros, 1000)
    value = f"{cutoff_ms + whole}.{fraction:03d}"
    expected = Age.EXPIRED if delta_micros < 0 else Age.FRESH
    assert AgeRule("ts", "epoch_millis", CUTOFF).classify({"ts": {"N": value}}) is expected


def test_cutoff_travels_as_whole_utc_seconds():
    moment = datetime(2026, 11, 23, 3, 0, 0, 123456, tzinfo=UTC)
    assert format_instant(moment) == "2026-11-23T03:00:00Z"


def test_config_values_map_to_dynamodb_types():
    assert to_attribute_value(True) == {"BOOL": True}
    assert to_attribute_value(1) == {"N": "1"}
    assert to_attribute_value(1.5) == {"N": "1.5"}
    assert to_attribute_value("1") == {"S": "1"}


def test_delete_condition_pins_the_seen_age_and_the_where_clause():
    raw = sweep_spec(
        "s", "Workers", completed=True, age_attribute="status", max_age="1h", delete_mode="item"
    )
    (sweep,) = parse_sweeps([raw])
    expressions = Expressions.build(sweep, ("WorkerId", "StartTime"))
    assert expressions.delete_condition == "#sc_age = :sc_age AND (#c IN (:n1, :s1))"
    assert expressions.delete_names == {"#sc_age": "status", "#c": "Completed"}
    assert expressions.projection == "#sc_k0, #sc_k1, #sc_age"
    assert expressions.filter == "#c IN (:n1, :s1)"


# -- the batch path's statement -------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "names", "read"),
    [
        ("#c IN (:n1, :s1)", {"#c": "Completed"}, ("Completed",)),
        ("attribute_exists(#a.#b[3]) AND size(x) > :v", {"#a": "A", "#b": "B"}, ("A", "x")),
        ("NOT begins_with(y, :p) OR z BETWEEN :a AND :b", {}, ("y", "z")),
        ("#a = :v AND #a <> :w", {"#a": "A"}, ("A",)),  # named once
        ("size = :v and kind in (:a)", {}, ("size", "kind")),  # keywords in any case
    ],
)
def test_where_attributes_are_the_top_level_attributes_the_condition_reads(where, names, read):
    assert where_attributes(where, names) == read


@pytest.mark.parametrize("where", ["#a = :v; DROP", "#a = 'x'", "#b = :v"])
def test_a_where_this_reader_cannot_follow_pins_nothing_and_deletes_item_by_item(where):
    assert where_attributes(where, {"#a": "A"}) is None


def test_the_delete_statement_quotes_names_and_pins_every_read_attribute():
    statement = DeleteStatement("T.x", ("k", 'we"ird'), "ts", ("Completed", "Doc"))
    item = {"k": {"N": "1"}, 'we"ird': {"S": "a"}, "ts": {"S": "t"}, "Completed": {"N": "1"}}

    text, parameters = statement.build(item)

    assert text == (
        'DELETE FROM "T.x" WHERE "k" = ? AND "we""ird" = ? AND "ts" = ? '
        'AND "Completed" = ? AND "Doc" IS MISSING RETURNING ALL OLD *'
    )
    assert parameters == [{"N": "1"}, {"S": "a"}, {"S": "t"}, {"N": "1"}]


def test_batch_mode_scans_the_attributes_it_pins_and_item_mode_does_not():
    raw = sweep_spec(
        "s",
        "Workers",
        max_age="1h",
        where="#c = :one AND WorkerId > :one AND ts <> :one",
        names={"#c": "Completed"},
        values={":one": 1},
    )
    (batch,) = parse_sweeps([raw])
    (item,) = parse_sweeps([{**raw, "delete_mode": "item"}])

    pinned = Expressions.build(batch, ("WorkerId",))
    plain = Expressions.build(item, ("WorkerId",))

    assert pinned.pinned == ("Completed",)  # key and age are pinned anyway
    assert "Completed" in pinned.projection_names.values()
    assert "Completed" not in plain.projection_names.values()


def test_a_new_age_counts_as_a_change_when_where_reads_the_age():
    """A batch retry pins only key and the new age: when ``where`` reads the age (here
    ``ts > :floor``), a rewritten age must go back to ``where``'s own condition."""
    raw = sweep_spec(
        "s",
        "Workers",
        age_format="epoch_seconds",
        max_age="1h",
        where="#t > :floor",
        names={"#t": "ts"},
        values={":floor": 100},
    )
    (reads_age,) = parse_sweeps([raw])
    (other,) = parse_sweeps([{**raw, "where": "#c = :floor", "names": {"#c": "Completed"}}])
    scanned = {"WorkerId": {"N": "1"}, "ts": {"N": "500"}, "Completed": {"N": "100"}}
    rewritten = {**scanned, "ts": {"N": "50"}}  # still old, but no longer > :floor

    statement = statement_for(reads_age)
    assert not statement.unchanged(scanned, rewritten)
    assert statement_for(other).unchanged(scanned, rewritten)


def statement_for(sweep: Sweep) -> DeleteStatement:
    expressions = Expressions.build(sweep, ("WorkerId",))
    return DeleteStatement(
        "Workers", ("WorkerId",), "ts", expressions.pinned or (), expressions.where_reads_age
    )
