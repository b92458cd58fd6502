from datetime import timedelta

import pytest

from scavenger.config import load_config, load_sweeps_json, parse_sweeps, sweeps_to_json
from scavenger.errors import ConfigError
from tests.sweeps import DOCUMENTED

VALID = DOCUMENTED


def sweep_with(**changes):
    raw = dict(VALID)
    for key, value in changes.items():
        if value is ...:
            raw.pop(key)
        else:
            raw[key] = value
    return raw


def test_valid_sweep_is_parsed_into_a_frozen_model():
    (sweep,) = parse_sweeps([VALID])
    assert sweep.max_age == timedelta(hours=48)
    assert sweep.values == {":n1": 1, ":s1": "1"}
    with pytest.raises(AttributeError):
        sweep.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"name": "Bad_Name"}, "name", "must match"),
        ({"name": "a" * 41}, "name", "must match"),
        ({"age_format": "rfc2822"}, "age_format", "is not one of"),
        ({"max_age": "48 hours"}, "max_age", "<int><s|m|h|d>"),
        ({"max_age": "-1h"}, "max_age", "<int><s|m|h|d>"),
        ({"max_age": "0h"}, "max_age", "greater than zero"),
        ({"max_age": 48}, "max_age", "must be a string"),
        ({"segments": 0}, "segments", "out of range"),
        ({"segments": 1_000_001}, "segments", "out of range"),
        ({"segments": "many"}, "segments", '"auto" or an integer'),
        ({"segments": True}, "segments", '"auto" or an integer'),
        ({"values": {":n1": 1}}, "where", "placeholder :s1 has no entry in values"),
        ({"names": {}}, "where", "placeholder #c has no entry in names"),
        ({"values": {":n1": 1, ":s1": "1", ":x": 2}}, ":x", "not used"),
        ({"colour": "blue"}, "colour", "unknown key"),
        ({"table": ...}, "table", "is required"),
        ({"table": "ab"}, "table", "not a valid DynamoDB table name"),
        ({"dry_run": "yes"}, "dry_run", "true or false"),
        ({"deletes_per_second": -5}, "deletes_per_second", ">= 0"),
        ({"where": ..., "names": ..., "values": {":x": 1}}, "names/values", "without a where"),
        ({"values": {":n1": [1], ":s1": "1"}}, "values.:n1", "number, string or boolean"),
        (
            {"names": {"#sc_age": "x"}, "where": "#sc_age = :n1", "values": {":n1": 1}},
            "#sc_age",
            "reserved",
        ),
    ],
)
def test_invalid_field_is_rejected_with_its_name_and_reason(changes, field, reason):
    with pytest.raises(ConfigError) as error:
        parse_sweeps([sweep_with(**changes)])
    message = str(error.value)
    assert field in message
    assert reason in message
    assert "\n" not in message


def test_duplicate_names_are_rejected():
    with pytest.raises(ConfigError, match="used twice"):
        parse_sweeps([VALID, VALID])


def test_empty_sweeps_are_rejected():
    with pytest.raises(ConfigError, match="non-empty list"):
        parse_sweeps([])


def test_json_round_trip_gives_the_same_sweeps():
    sweeps = parse_sweeps([VALID, sweep_with(name="other", where=..., names=..., values=...)])
    assert load_sweeps_json(sweeps_to_json(sweeps)) == sweeps


def test_invalid_json_env_names_the_variable():
    with pytest.raises(ConfigError, match="SCAVENGER_SWEEPS: not valid JSON"):
        load_sweeps_json("[{")


def test_toml_file_is_loaded(tmp_path):
    path = tmp_path / "scavenger.toml"
    path.write_text(
        """
[resources]
queue_url = "https://sqs.example/q.fifo"

[[sweeps]]
name = "stale-workers"
table = "Workers"
age_attribute = "StartExecutionTime"
age_format = "iso8601"
max_age = "48h"
where = "#c IN (:n1, :s1)"
names = { "#c" = "Completed" }
values = { ":n1" = 1, ":s1" = "1" }
segments = 8
"""
    )
    config = load_config(path)
    assert config.sweep("stale-workers").segments == 8
    assert config.resources["queue_url"].endswith("q.fifo")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[[sweeps]\nname=", "not valid TOML"),
        ("colour = 1\n", "unknown top-level key"),
        ('[resources]\nqueue = "x"\n', "resources.queue: unknown key"),
    ],
)
def test_bad_toml_files_are_one_clear_line(tmp_path, text, reason):
    path = tmp_path / "scavenger.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason):
        load_config(path)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_unknown_sweep_lists_the_configured_ones(tmp_path):
    from scavenger.config import Config

    config = Config(sweeps=parse_sweeps([VALID]))
    with pytest.raises(ConfigError, match="configured: stale-workers"):
        config.sweep("other")


def test_delete_mode_defaults_to_batch_and_travels_in_the_json_form():
    (default,) = parse_sweeps([VALID])
    (item,) = parse_sweeps([sweep_with(delete_mode="item")])

    assert default.delete_mode == "batch"
    assert load_sweeps_json(sweeps_to_json((item,))) == (item,)
    assert '"delete_mode":"item"' in sweeps_to_json((item,))


@pytest.mark.parametrize("value", ["partiql", "", 1, True, None])
def test_an_unknown_delete_mode_is_rejected_naming_the_field(value):
    with pytest.raises(ConfigError, match=r"delete_mode: .* is not one of batch, item"):
        parse_sweeps([sweep_with(delete_mode=value)])
