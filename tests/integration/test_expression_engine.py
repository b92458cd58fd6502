"""The local syntax check against AWS's own engine (DynamoDB Local): over generated
expressions, typos of valid ones among them, the check never refuses one the engine
accepts, and refuses nearly every one the engine calls a syntax error."""

from __future__ import annotations

import random
import re
import shutil
from typing import Any

import pytest

from scavenger.expression import ExpressionSyntaxError, check_condition
from scavenger.tools.local.emulator import Emulator
from tests.dataset import create_hash_table

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed"),
]

VOCABULARY = [
    *("#a", "#b", ":x", ":y", "=", "<>", "<", ">=", "AND", "OR", "NOT", "BETWEEN", "IN"),
    *("(", ")", ",", ".", "[", "0", "]", "size", "attribute_exists", "begins_with"),
    *("contains", "attribute_type", "and", "Foo", "x1"),
]
VALID = [
    "#a = :x",
    "#a IN (:x, :y)",
    "attribute_exists(#a)",
    "#a BETWEEN :x AND :y",
    "begins_with(#a, :x)",
    "size(#a) > :x",
    "NOT #a = :x",
    "(#a = :x)",
    "#a.#b[0] = :x",
    "contains(#a, :y)",
]


def expressions(rng: random.Random, count: int) -> list[str]:
    drawn = []
    for _ in range(count):
        if rng.random() < 0.4:
            text = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 8)))
        else:
            text = rng.choice(VALID)
            for _ in range(rng.randint(0, 2)):
                text += f" {rng.choice(['AND', 'OR'])} {rng.choice(VALID)}"
            tokens = text.split(" ")
            if rng.random() < 0.6:  # a typo: a token dropped, added or replaced
                index = rng.randrange(len(tokens))
                edit = rng.random()
                if edit < 0.3 and len(tokens) > 1:
                    del tokens[index]
                elif edit < 0.6:
                    tokens.insert(index, rng.choice(VOCABULARY))
                else:
                    tokens[index] = rng.choice(VOCABULARY)
            text = " ".join(tokens)
            if rng.random() < 0.3 and len(text) > 1:  # cut short
                text = text[: rng.randrange(1, len(text))]
        drawn.append(text)
    return drawn


def test_the_local_check_never_refuses_what_the_engine_accepts() -> None:
    with Emulator(dynamodb="dynamodb-local") as endpoints:
        dynamodb = endpoints.client("dynamodb")
        create_hash_table(dynamodb, "Expressions", key="k")
        false_refusals, engine_syntax_errors, missed = [], 0, []
        for text in expressions(random.Random(15), 300):
            request: dict[str, Any] = {"TableName": "Expressions", "Limit": 1}
            request["FilterExpression"] = text
            names = {name: "A" for name in set(re.findall(r"#[A-Za-z0-9_]+", text))}
            values = {value: {"S": "v"} for value in set(re.findall(r":[A-Za-z0-9_]+", text))}
            if names:
                request["ExpressionAttributeNames"] = names
            if values:
                request["ExpressionAttributeValues"] = values
            try:
                dynamodb.scan(**request)
                engine_error = ""
            except dynamodb.exceptions.ClientError as exc:
                engine_error = str(exc)
            try:
                check_condition(text)
                refused = False
            except ExpressionSyntaxError:
                refused = True
            if refused and not engine_error:
                false_refusals.append(text)
            if "Syntax error" in engine_error:
                engine_syntax_errors += 1
                if not refused:
                    missed.append(text)

    assert false_refusals == []
    assert engine_syntax_errors > 100
    assert len(missed) <= engine_syntax_errors // 20, missed
