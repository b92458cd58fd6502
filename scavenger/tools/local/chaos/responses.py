"""Synthetic answers: what DynamoDB or SQS would say to a throttled or failed call."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse


class _Raw:
    """The body of a synthetic response, as botocore reads it."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def error_response(
    request: AWSPreparedRequest, service: str, code: str, status: int
) -> AWSResponse:
    """What the service would answer with ``code``, in its protocol (both speak JSON)."""
    prefix = "com.amazonaws.dynamodb.v20120810" if service == "dynamodb" else "com.amazonaws.sqs"
    body = json.dumps({"__type": f"{prefix}#{code}", "message": "injected by chaos mode"})
    headers = {"x-amzn-RequestId": uuid.uuid4().hex, "Content-Type": "application/x-amz-json-1.0"}
    if service == "sqs":
        headers["x-amzn-query-error"] = f"{code};{'Receiver' if status >= 500 else 'Sender'}"
    http_headers: Any = headers
    return AWSResponse(request.url, status, http_headers, _Raw(body.encode()))


def ok_response(parsed: dict[str, Any]) -> AWSResponse:
    """A 200 carrying ``parsed`` (a batch whose every statement failed never leaves)."""
    headers: Any = {}
    return AWSResponse("https://chaos", 200, headers, _Raw(json.dumps(parsed).encode()))


def statement_error(rng: random.Random) -> dict[str, Any]:
    """One failed statement of a batch, as DynamoDB puts it in ``Responses[i]``."""
    code = rng.choice(("ProvisionedThroughputExceeded", "ThrottlingError", "InternalServerError"))
    return {"Error": {"Code": code, "Message": "injected by chaos"}}


def internal_error(service: str) -> str:
    return "InternalServerError" if service == "dynamodb" else "InternalError"


def throttle_code(service: str, rng: random.Random) -> str:
    if service != "dynamodb":
        return "ThrottlingException"
    return rng.choice(("ProvisionedThroughputExceededException", "ThrottlingException"))
