"""A local syntax check of a DynamoDB condition expression (a sweep's ``where``).

It catches what a typo makes of an expression (an unclosed IN list, a dangling AND,
an unknown character) when the config is parsed, with the position. It is lenient
wherever DynamoDB's rules are finer (reserved words, function-name case, operand
types): the planner's one-item Scan, DynamoDB's own reading, remains the judge.

Grammar (DynamoDB's "Comparison operator and function reference"):

    condition  := disjunct (OR disjunct)*
    disjunct   := negation (AND negation)*
    negation   := NOT negation | "(" condition ")" | function | comparison
    comparison := operand (comparator operand | BETWEEN operand AND operand
                           | IN "(" operand ("," operand)* ")")
    function   := attribute_exists(path) | attribute_not_exists(path)
                | attribute_type(path, operand) | begins_with(path, operand)
                | contains(path, operand)
    operand    := :value | path | size(path)
    path       := name ("." name | "[" digits "]")*      name := identifier | #name
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
# Condition functions and how many arguments each takes.
FUNCTIONS = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
}
TOKEN = re.compile(
    r"\s*(?:(?P<comparator><>|<=|>=|=|<|>)|(?P<punct>[(),.\[\]])"
    r"|(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<number>[0-9]+)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)


class ExpressionSyntaxError(ValueError):
    """Not a condition expression; the message says where and what was expected."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int  # 1-based character position, as an error message names it

    @property
    def keyword(self) -> str | None:
        upper = self.text.upper()
        return upper if self.kind == "word" and upper in KEYWORDS else None


def check_condition(expression: str) -> None:
    """Raise ExpressionSyntaxError unless ``expression`` parses as a condition."""
    parser = _Parser(_tokens(expression))
    parser.condition()
    if parser.peek() is not None:
        parser.fail("AND, OR or the end")


def _tokens(expression: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    end = len(expression.rstrip())
    while position < end:
        match = TOKEN.match(expression, position)
        if match is None or match.end() == position:
            start = len(expression) - len(expression[position:].lstrip())
            raise ExpressionSyntaxError(
                f"unexpected {expression[start]!r} at character {start + 1}"
            )
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind), match.start(kind) + 1))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def upcoming(self, expected: str) -> Token:
        """The next token, not taken; at the end, fail naming what was ``expected``."""
        token = self.peek()
        if token is None:
            self.fail(expected)
        return token

    def take(self) -> Token:
        token = self.upcoming("more")
        self.index += 1
        return token

    def fail(self, expected: str) -> NoReturn:
        token = self.peek()
        if token is None:
            raise ExpressionSyntaxError(f"expected {expected} at the end")
        raise ExpressionSyntaxError(
            f"expected {expected} at character {token.position}, found {token.text!r}"
        )

    def expect(self, text: str) -> None:
        token = self.peek()
        if token is None or token.text != text:
            self.fail(repr(text))
        self.index += 1

    def at_keyword(self, keyword: str) -> bool:
        token = self.peek()
        return token is not None and token.keyword == keyword

    def condition(self) -> None:
        self.disjunct()
        while self.at_keyword("OR"):
            self.take()
            self.disjunct()

    def disjunct(self) -> None:
        self.negation()
        while self.at_keyword("AND"):
            self.take()
            self.negation()

    def negation(self) -> None:
        token = self.upcoming("a condition")
        if token.keyword == "NOT":
            self.take()
            self.negation()
        elif token.text == "(":
            self.take()
            self.condition()
            self.expect(")")
        elif token.kind == "word" and token.text.lower() in FUNCTIONS and self._call_follows():
            self.function()
        else:
            self.comparison()

    def _call_follows(self) -> bool:
        after = self.index + 1
        return after < len(self.tokens) and self.tokens[after].text == "("

    def function(self) -> None:
        name = self.take().text.lower()
        self.expect("(")
        self.path()
        for _ in range(FUNCTIONS[name] - 1):
            self.expect(",")
            self.operand()
        self.expect(")")

    def comparison(self) -> None:
        self.operand()
        token = self.peek()
        if token is not None and token.kind == "comparator":
            self.take()
            self.operand()
        elif self.at_keyword("BETWEEN"):
            self.take()
            self.operand()
            if not self.at_keyword("AND"):
                self.fail("AND (BETWEEN a AND b)")
            self.take()
            self.operand()
        elif self.at_keyword("IN"):
            self.take()
            self.expect("(")
            self.operand()
            while (token := self.peek()) is not None and token.text == ",":
                self.take()
                self.operand()
            self.expect(")")
        else:
            self.fail("a comparator (= <> < <= > >=), BETWEEN or IN")

    def operand(self) -> None:
        token = self.upcoming("an operand")
        if token.kind == "value":
            self.take()
        elif token.kind == "word" and token.text.lower() == "size" and self._call_follows():
            self.take()
            self.expect("(")
            self.path()
            self.expect(")")
        else:
            self.path()

    def path(self) -> None:
        self.name()
        while (token := self.peek()) is not None and token.text in (".", "["):
            self.take()
            if token.text == ".":
                self.name()
            else:
                number = self.peek()
                if number is None or number.kind != "number":
                    self.fail("a list index")
                self.take()
                self.expect("]")

    def name(self) -> None:
        token = self.peek()
        if token is None or token.kind not in ("name", "word") or token.keyword is not None:
            self.fail("an attribute name or #placeholder")
        self.take()
