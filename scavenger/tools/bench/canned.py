"""boto3 clients that answer from canned responses: everything botocore does
(validation, serialization, signing, parsing) runs, only the network is taken out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import boto3
from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient

from scavenger.aws import BOTO_CONFIG

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

Responder = Callable[[dict[str, Any]], dict[str, Any]]


class _Body:
    def __init__(self, payload: bytes):
        self.payload = payload

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.payload


@overload
def canned_client(
    service: Literal["dynamodb"], responders: dict[str, Responder]
) -> DynamoDBClient: ...
@overload
def canned_client(service: Literal["sqs"], responders: dict[str, Responder]) -> SQSClient: ...
def canned_client(service: str, responders: dict[str, Responder]) -> BaseClient:
    """A real client whose HTTP layer is replaced by ``responders[operation](request)``."""
    client: BaseClient = boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name="us-east-1",
        endpoint_url="https://canned.invalid",
        aws_access_key_id="canned",
        aws_secret_access_key="canned",
        config=BOTO_CONFIG,
    )

    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        payload = json.loads(request.body or b"{}")
        body = json.dumps(responders[operation](payload)).encode()
        headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "canned"}
        return AWSResponse("https://canned.invalid", 200, cast(Any, headers), _Body(body))

    service_id = client.meta.service_model.service_id.hyphenize()
    # botocore takes what a before-send handler returns as the response; the stubs type
    # every handler as returning None.
    hook = cast("Callable[..., None]", answer)
    client.meta.events.register(f"before-send.{service_id}", hook)
    return client
