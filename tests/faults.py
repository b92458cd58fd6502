"""Fault injection through botocore's event hooks: the real client code path runs,
and the injected error is raised by botocore exactly as a service error would be."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse


def error_response(code: str, status: int) -> tuple[AWSResponse, dict[str, Any]]:
    http = AWSResponse(url="https://injected", status_code=status, headers={}, raw=None)
    parsed = {
        "Error": {"Code": code, "Message": "injected by the test"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return http, parsed


class ErrorInjector:
    """Fails a fraction of calls to ``operation`` with ``code`` (before they are sent)."""

    def __init__(
        self,
        client: Any,
        operation: str,
        *,
        rate: float,
        code: str = "ProvisionedThroughputExceededException",
        status: int = 400,
        seed: int = 7,
        limit: int | None = None,
    ):
        self.rate = rate
        self.code = code
        self.status = status
        self.random = random.Random(seed)
        self.limit = limit
        self.injected = 0
        client.meta.events.register(f"before-call.dynamodb.{operation}", self)
        client.meta.events.register(f"before-call.sqs.{operation}", self)

    def __call__(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.limit is not None and self.injected >= self.limit:
            return None
        if self.random.random() < self.rate:
            self.injected += 1
            return error_response(self.code, self.status)
        return None


def on_call(client: Any, operation: str, action: Callable[[dict[str, Any]], None]) -> None:
    """Run ``action(params)`` just before each ``operation`` call is built."""

    def hook(params: dict[str, Any], **_: Any) -> None:
        action(params)

    client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", hook)


def tick_per_call(client: Any, advance: Callable[[], None]) -> None:
    """Advance a fake clock on every DynamoDB call (each call 'takes time')."""
    client.meta.events.register("before-call.dynamodb", lambda **_: advance())


class StatementFaults:
    """Fails a fraction of the statements of each BatchExecuteStatement with ``code`` in
    ``Responses[i].Error``, as DynamoDB does: the failed statements are taken out of the
    request before it is sent (they never run), their errors put back in place after."""

    def __init__(self, client: Any, *, rate: float, code: str = "ThrottlingError", seed: int = 7):
        self.rate = rate
        self.code = code
        self.random = random.Random(seed)
        self.failed: list[int] = []
        self.injected = 0
        events = client.meta.events
        events.register("before-call.dynamodb.BatchExecuteStatement", self.before)
        events.register("after-call.dynamodb.BatchExecuteStatement", self.after)

    def before(self, params: dict[str, Any], **_: Any) -> Any:
        body = json.loads(params["body"])
        statements = body["Statements"]
        self.failed = [i for i in range(len(statements)) if self.random.random() < self.rate]
        self.injected += len(self.failed)
        if len(self.failed) == len(statements):
            http = AWSResponse(url="https://injected", status_code=200, headers={}, raw=None)
            parsed = {"Responses": [self._error() for _ in statements]}
            self.failed = []
            return http, parsed
        body["Statements"] = [s for i, s in enumerate(statements) if i not in self.failed]
        params["body"] = json.dumps(body).encode()
        return None

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        responses = parsed.get("Responses")
        if responses is None or not self.failed:
            return
        for index in self.failed:
            responses.insert(index, self._error())
        self.failed = []

    def _error(self) -> dict[str, Any]:
        return {"Error": {"Code": self.code, "Message": "injected by the test"}}


class RefuseTable:
    """Answers ``code`` to every data call on ``table`` (a role without its grants, a
    table gone), as the service would, once ``after_scans`` Scans and ``after_deletes``
    delete calls have gone through and until ``refusing`` is set False (the fix);
    records each refused call as (operation, segment or None)."""

    OPERATIONS = ("Scan", "DeleteItem", "GetItem", "BatchExecuteStatement", "DescribeTable")

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        code: str = "AccessDeniedException",
        status: int = 400,
        after_scans: int = 0,
        after_deletes: int = 0,
        operations: tuple[str, ...] = OPERATIONS,
    ):
        self.table = table
        self.code = code
        self.status = status
        # Calls that go through before the refusals start: Scans, and deletes of either kind.
        self.passes_left = {"Scan": after_scans, "delete": after_deletes}
        self.refusing = True
        self.refused: list[tuple[str, int | None]] = []
        for operation in operations:
            client.meta.events.register(f"before-call.dynamodb.{operation}", self)

    def _on_table(self, body: dict[str, Any]) -> bool:
        statements = [entry.get("Statement", "") for entry in body.get("Statements", [])]
        return body.get("TableName") == self.table or any(
            f'"{self.table}"' in statement for statement in statements
        )

    def __call__(
        self, model: Any, params: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        body = json.loads(params["body"] or b"{}")
        if not self.refusing or not self._on_table(body):
            return None
        kind = "delete" if model.name in ("DeleteItem", "BatchExecuteStatement") else model.name
        if any(self.passes_left.values()):
            if self.passes_left.get(kind, 0) > 0:
                self.passes_left[kind] -= 1
            return None
        self.refused.append((model.name, body.get("Segment")))
        return error_response(self.code, self.status)
