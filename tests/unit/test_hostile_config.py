"""Hostile configuration: any JSON for SCAVENGER_SWEEPS, any TOML text or file content.

Whatever comes in, the outcome is a parsed config or one ConfigError line that names
a field; no other exception escapes, and what parses survives its own JSON round trip.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scavenger.config import (
    SWEEP_KEYS,
    Config,
    load_config,
    load_sweeps_json,
    parse_config,
    parse_sweeps,
    sweeps_to_json,
)
from scavenger.errors import ConfigError, ScavengerError
from tests.sweeps import DOCUMENTED

VALID = DOCUMENTED
FIELD_NAMES = (*SWEEP_KEYS, "sweeps", "resources", "config", "SCAVENGER_SWEEPS")
MAX_MESSAGE = 600

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["auto", "48h", "0h", "1d", "99999999999999d", "iso8601", "epoch_millis"]),
    st.sampled_from(["Workers", "abc\n", "ok-name", "a" * 41, "\u00e9t\u00e9", "\x00"]),
    st.just("x" * 5000),
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
field_values = {
    "name": st.sampled_from(["a", "stale-workers", "Bad", "a-", "-a", "a" * 40, "abc\n"]),
    "table": st.sampled_from(["Workers", "ab", "T" * 255, "T" * 256, "Tab le", "Tab\n"]),
    "age_attribute": st.sampled_from(["ts", "", "\u00e4ge", "x" * 300]),
    "age_format": st.sampled_from(["iso8601", "epoch_seconds", "epoch_millis", "ISO8601", ""]),
    "max_age": st.sampled_from(["48h", "1s", "36500d", "36501d", "0d", "48 h", "1w", "\uff14h"]),
    "segments": st.one_of(st.sampled_from(["auto", "AUTO"]), st.integers(-2, 1_000_002)),
    "dry_run": st.sampled_from([True, False, 0, 1, "true"]),
    "deletes_per_second": st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-5, 10**7),
        st.sampled_from([True, "5"]),
    ),
    "values": st.dictionaries(
        st.sampled_from([":n1", ":s1", "n1", ":sc_x"]),
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=-(10**45), max_value=10**45),
            st.text(max_size=5),
            st.booleans(),
            st.none(),
        ),
        max_size=3,
    ),
}


@st.composite
def near_valid_sweeps(draw: st.DrawFn) -> dict[str, Any]:
    """A valid sweep with some fields replaced by plausible or junk values."""
    sweep = dict(VALID)
    for name in draw(st.lists(st.sampled_from(sorted(field_values)), max_size=3, unique=True)):
        sweep[name] = draw(field_values[name] | junk)
    if draw(st.booleans()):
        sweep.pop(draw(st.sampled_from(sorted(sweep))), None)
    if draw(st.integers(0, 5)) == 0:
        sweep[draw(st.text(min_size=1, max_size=10))] = draw(junk)
    return sweep


def assert_one_clear_line(error: ScavengerError) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message
    assert len(message) < MAX_MESSAGE, message
    assert any(name in message for name in FIELD_NAMES) or message.startswith(("sweep", ":", "#"))


def parse_or_explain(parse: Any, raw: Any) -> tuple[Any, ...] | Config | None:
    """The parsed result, or None after checking the error is one clear ConfigError line."""
    try:
        return parse(raw)  # type: ignore[no-any-return]
    except ConfigError as error:
        assert_one_clear_line(error)
        return None


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(near_valid_sweeps(), min_size=1, max_size=2))
def test_any_near_valid_sweep_list_parses_or_names_the_field(raw: list[dict[str, Any]]) -> None:
    sweeps = parse_or_explain(parse_sweeps, raw)
    if sweeps is not None:
        assert isinstance(sweeps, tuple)
        for sweep in sweeps:
            assert sweep.max_age > timedelta(0)
            assert math.isfinite(sweep.deletes_per_second)
        assert load_sweeps_json(sweeps_to_json(sweeps)) == sweeps


@settings(max_examples=200)
@given(junk)
def test_any_json_document_in_scavenger_sweeps_parses_or_names_the_field(document: Any) -> None:
    parse_or_explain(load_sweeps_json, json.dumps(document))


@settings(max_examples=200)
@given(st.text(max_size=200))
@example("[" * 100_000)
@example('[{"name": ' + "9" * 5000 + "}]")
@example("NaN")
@example('{"sweeps": []}')
def test_any_text_in_scavenger_sweeps_parses_or_names_the_field(text: str) -> None:
    parse_or_explain(load_sweeps_json, text)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["sweeps", "resources", "other"]), junk, max_size=3))
def test_any_top_level_table_parses_or_names_the_field(raw: dict[str, Any]) -> None:
    parse_or_explain(parse_config, raw)


def toml_value(value: Any) -> str:
    """A Python value as TOML (inline tables and arrays), for valid TOML of any shape."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


toml_scalars = scalars.filter(lambda value: value is not None)
toml_junk = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(near_valid_sweeps(), toml_junk), min_size=0, max_size=2))
def test_valid_toml_of_any_shape_parses_or_names_the_field(tmp_path_factory, sweeps) -> None:
    lines = []
    for sweep in sweeps:
        if isinstance(sweep, dict):
            lines.append("[[sweeps]]")
            lines.extend(
                f"{json.dumps(key)} = {toml_value(value)}"
                for key, value in sweep.items()
                if value is not None and not _holds_none(value)
            )
        else:
            lines.append(f"sweeps = {toml_value(sweep)}")
            break
    path = tmp_path_factory.mktemp("toml") / "scavenger.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parse_or_explain(load_config, path)


def _holds_none(value: Any) -> bool:
    if isinstance(value, list):
        return any(item is None or _holds_none(item) for item in value)
    if isinstance(value, dict):
        return any(item is None or _holds_none(item) for item in value.values())
    return False


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(b"\xff\xfe[[sweeps]]")
@example(b"a = " + b"[" * 50_000)
@example(b"x = " + b"1" * 5000)
def test_any_file_content_parses_or_names_the_field(tmp_path_factory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("toml") / "scavenger.toml"
    path.write_bytes(content)
    parse_or_explain(load_config, path)


@pytest.mark.parametrize(
    "path",
    ["/nonexistent/scavenger.toml", "bad\x00path.toml", "/", "/proc/self/mem"],
)
def test_unreadable_config_paths_are_one_line(path: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(Path(path) if "\x00" not in path else path)
    assert_one_clear_line(error.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"deletes_per_second": math.nan}, "deletes_per_second"),
        ({"deletes_per_second": math.inf}, "deletes_per_second"),
        ({"deletes_per_second": 10**400}, "deletes_per_second"),
        ({"max_age": "9999999999999999999999d"}, "max_age"),
        ({"name": "stale\n"}, "name"),
        ({"table": "Workers\n"}, "table"),
        ({"values": {":n1": math.nan, ":s1": "1"}}, "values.:n1"),
        ({"values": {":n1": math.inf, ":s1": "1"}}, "values.:n1"),
        ({"values": {":n1": 1e-300, ":s1": "1"}}, "values.:n1"),
        ({"values": {":n1": 10**39 + 1, ":s1": "1"}}, "values.:n1"),
        ({"values": {":n1": 10**5000, ":s1": "1"}}, "values.:n1"),
        ({"where": "#c IN (:n1, :s1)" + " " * 5000}, "where"),
        ({1: "x"}, "unknown key"),
    ],
)
def test_values_that_would_fail_later_are_refused_at_start(changes, field) -> None:
    with pytest.raises(ConfigError) as error:
        parse_sweeps([{**VALID, **changes}])
    assert field in str(error.value)
    assert_one_clear_line(error.value)


@pytest.mark.parametrize(
    "value", [10**37, -(10**37), 1e-130, 9.99e125, 0, 0.0, 12345678901234567890123456789012345678]
)
def test_numbers_dynamodb_can_store_are_accepted(value) -> None:
    (sweep,) = parse_sweeps([{**VALID, "values": {":n1": value, ":s1": "1"}}])
    assert sweep.values[":n1"] == value


def test_error_messages_quote_huge_values_briefly() -> None:
    with pytest.raises(ConfigError) as error:
        parse_sweeps([{**VALID, "table": "x" * 100_000}])
    assert len(str(error.value)) < 200
