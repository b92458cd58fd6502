"""Which errors on the swept table halt a run: those every segment would meet, and only
on the swept table's own calls (the worker's SweptTableRetry), never on the ledger's."""

import pytest
from botocore.exceptions import ClientError

from scavenger.errors import FatalError, RetryableError, SystemicError, systemic
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.sweep_message import SweptTableRetry


def client_error(code, message="m", status=400):
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "Scan",
    )


def failing(error):
    def operation():
        raise error

    return operation


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("AccessDeniedException", "User: arn:aws:sts::1:assumed-role/w is not authorized"),
        ("AccessDenied", "denied"),
        ("ResourceNotFoundException", "Requested resource not found"),
        ("ValidationException", "Invalid FilterExpression: Syntax error; token: ORR"),
        ("ValidationException", "Value provided in ExpressionAttributeNames unused in expressions"),
    ],
)
def test_errors_every_segment_would_meet_are_systemic(code, message):
    policy = SweptTableRetry("Swept", NoDeadline())

    with pytest.raises(SystemicError) as raised:
        policy.call(failing(client_error(code, message)), "Scan")

    error = raised.value
    assert (error.call, error.resource) == ("Scan", "Swept")
    assert (error.code, error.message) == (code, message)
    assert isinstance(error, FatalError)  # anything that does not know halting still fails


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        # one segment's own: a bad cursor or key names no expression
        ("ValidationException", "The provided starting key is invalid", FatalError),
        ("ValidationException", "The provided key element does not match the schema", FatalError),
        ("SerializationException", "m", FatalError),
        ("ProvisionedThroughputExceededException", "m", RetryableError),
        ("ThrottlingException", "m", RetryableError),
    ],
)
def test_a_segments_own_or_transient_error_is_not_systemic(code, message, kind):
    policy = SweptTableRetry("Swept", NoDeadline(), max_attempts=2, sleep=lambda seconds: None)

    with pytest.raises(kind) as raised:
        policy.call(failing(client_error(code, message)), "DeleteItem")

    assert not isinstance(raised.value, SystemicError)


def test_a_5xx_is_never_systemic():
    policy = SweptTableRetry("Swept", NoDeadline(), max_attempts=2, sleep=lambda seconds: None)

    with pytest.raises(RetryableError):
        policy.call(failing(client_error("InternalServerError", status=500)), "Scan")


def test_the_same_error_outside_the_swept_tables_calls_is_only_fatal():
    # The ledger and the queue use a plain RetryPolicy: their AccessDenied fails the
    # record (retried, then the DLQ), it never halts the run.
    with pytest.raises(FatalError) as raised:
        RetryPolicy(NoDeadline()).call(failing(client_error("AccessDeniedException")), "UpdateItem")

    assert not isinstance(raised.value, SystemicError)
    assert systemic(FatalError("no cause"), "Scan", "Swept") is None
