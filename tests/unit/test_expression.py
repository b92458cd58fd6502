"""The local syntax check of a sweep's ``where``: what a typo makes of an expression
is refused with its position when the config is parsed; anything DynamoDB may accept
passes (the planner's one-item Scan is the engine's own reading)."""

from __future__ import annotations

import pytest

from scavenger.config import parse_sweeps
from scavenger.errors import ConfigError
from scavenger.expression import ExpressionSyntaxError, check_condition

ACCEPTED = [
    "#c IN (:n1, :s1)",
    "#c = :n1",
    "Completed = :n1",
    "attribute_exists(#a)",
    "attribute_not_exists(#a.#b)",
    "NOT attribute_exists(#a) AND #b <> :x",
    "(#a = :x OR #b = :y) AND size(#c) > :n",
    "#a BETWEEN :lo AND :hi",
    "#a between :lo and :hi",
    "begins_with(#a, :p) OR contains(#a.b[3], :v)",
    "#a[0].#b >= :v",
    "attribute_type(#a, :t)",
    "size(#a) = size(#b)",
    "((#a = :b))",
    "  #a   <=   :b  ",
    "NOT NOT #a < :b",
]
REFUSED = [
    ("#c IN (:n1, ", "expected an operand at the end"),
    ("#c = :n1 AND", "expected a condition at the end"),
    ("#c = = :n1", "at character 6, found '='"),
    ("(#c = :n1", "expected ')' at the end"),
    ("#c BETWEEN :n1", "expected AND (BETWEEN a AND b) at the end"),
    ("#c", "expected a comparator"),
    ("#c IN (:n1 :s1)", "expected ')' at character 12, found ':s1'"),
    ("#a = :b)", "expected AND, OR or the end at character 8"),
    ("#a = :b $", "unexpected '$' at character 9"),
    ("AND #a = :b", "at character 1, found 'AND'"),
    ("#a[x] = :b", "expected a list index at character 4"),
    ("attribute_exists(#a", "expected ')' at the end"),
    ("begins_with(#a)", "expected ',' at character 15"),
    ("#a = :b OR", "expected a condition at the end"),
    ("#a == :b", "at character 5, found '='"),
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_condition_expressions_dynamodb_reads_pass(expression: str) -> None:
    check_condition(expression)


@pytest.mark.parametrize(("expression", "message"), REFUSED)
def test_typos_are_refused_with_their_position(expression: str, message: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as refused:
        check_condition(expression)
    assert message in str(refused.value)


def test_a_sweep_with_a_broken_where_is_a_config_error_naming_sweep_and_key() -> None:
    sweep = {
        "name": "stale-workers",
        "table": "Workers",
        "age_attribute": "ts",
        "age_format": "iso8601",
        "max_age": "48h",
        "where": "#c IN (:n1, ",
        "names": {"#c": "Completed"},
        "values": {":n1": 1},
    }
    with pytest.raises(ConfigError) as refused:
        parse_sweeps([sweep])
    assert str(refused.value) == (
        "sweep 'stale-workers': where: not a condition expression: expected an operand at the end"
    )
