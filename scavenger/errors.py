"""Domain errors, and the one place where AWS error codes become domain outcomes."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError


class ScavengerError(Exception):
    """A problem the user can fix (bad config, unknown run, refused command).

    The CLI prints it as one line and exits non-zero, never with a traceback.
    """


class ConfigError(ScavengerError):
    """Invalid configuration: the message names the field and the reason."""


class InvalidMessage(ValueError):
    """A queue message body that is not a valid segment message (a poison message)."""


class RetryableError(Exception):
    """Throttling, a 5xx or a dropped connection: worth another try after a pause."""


class Throttled(RetryableError):
    """The service asked us to slow down (throttling, or a batch call that left part
    of its work undone): retried like a transient error, after longer waits."""


class Unprocessed(Throttled):
    """A batch call succeeded but left part of its work undone (unprocessed items,
    failed entries): DynamoDB's and SQS's way to throttle a batch."""


class ConditionFailed(Exception):
    """A conditional write found the item changed or gone: not an error, a skip."""


class FatalError(Exception):
    """Retrying cannot help (access denied, missing table, invalid request)."""


class SystemicError(FatalError):
    """A fatal error on the swept table that every segment of the run would meet too
    (access denied, the table missing, the sweep's own expression rejected): the run
    is halted rather than retried segment by segment."""

    def __init__(self, call: str, resource: str, code: str, message: str):
        super().__init__(f"{code} on {call} of {resource}: {message}")
        self.call = call
        self.resource = resource
        self.code = code
        self.message = message


class OutOfTime(Exception):
    """Too little of the invocation is left to claim a record and continue it safely:
    the record is handed back (a batch item failure) before any AWS call."""


# Codes that mean "slow down and try again". Kept in one tuple, as botocore does.
THROTTLING_CODES = (
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "TransactionInProgressException",
    "KMS.ThrottlingException",
)

# Codes of a transient server fault (as any 5xx): retried, without slowing down more.
TRANSIENT_CODES = ("InternalServerError", "InternalFailure", "ServiceUnavailable")

CONDITION_FAILED_CODES = ("ConditionalCheckFailedException",)

# Codes on the swept table that no retry and no other segment can get past: the role
# lacks the action, or the table (or its region) is wrong.
SYSTEMIC_CODES = (
    "AccessDeniedException",
    "AccessDenied",
    "ResourceNotFoundException",
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def classify(exc: Exception) -> Exception:
    """Map a botocore exception to a domain exception (to be raised ``from exc``)."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if code in CONDITION_FAILED_CODES:
            return ConditionFailed(message)
        if code == "TransactionCanceledException":
            return _cancelled_transaction(exc, message)
        if code in THROTTLING_CODES:
            return Throttled(f"{code}: {message}")
        if code in TRANSIENT_CODES or status >= 500:
            return RetryableError(f"{code or status}: {message}")
        return FatalError(f"{code}: {message}")
    if isinstance(exc, ConnectionError | ReadTimeoutError):
        return RetryableError(str(exc))
    if isinstance(exc, BotoCoreError):
        return FatalError(str(exc))
    return exc


def systemic(exc: FatalError, call: str, resource: str) -> SystemicError | None:
    """``exc``, raised by ``call`` on the swept table ``resource``, as a SystemicError if
    every segment would meet it; None if it may be this segment's alone.

    A ValidationException counts only when DynamoDB names an expression: the sweep's
    where, names, values and projection are the same in every segment's requests,
    while a bad cursor or key is one segment's problem.
    """
    cause = exc.__cause__
    if not isinstance(cause, ClientError):
        return None
    code = error_code(cause)
    message = str(cause.response.get("Error", {}).get("Message", "")) or str(cause)
    names_expression = code == "ValidationException" and "expression" in message.lower()
    if code in SYSTEMIC_CODES or names_expression:
        return SystemicError(call, resource, code, message)
    return None


def _cancelled_transaction(exc: ClientError, message: str) -> Exception:
    """A transaction fails as a whole; its reasons say why, one per item."""
    reasons = [
        str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])
    ]
    failed = [code for code in reasons if code not in ("None", "")]
    if failed and all(
        code in ("ConditionalCheckFailed", *CONDITION_FAILED_CODES) for code in failed
    ):
        return ConditionFailed(message)
    retryable = ("TransactionConflict", *THROTTLING_CODES, *TRANSIENT_CODES)
    if any(code in retryable for code in failed) or not failed:
        return RetryableError(f"TransactionCanceledException: {message}")
    return FatalError(f"TransactionCanceledException: {message}")


# Per-statement error codes of BatchExecuteStatement (Responses[i].Error.Code).
STATEMENT_RETRYABLE_CODES = (
    "ProvisionedThroughputExceeded",
    "ThrottlingError",
    "InternalServerError",
    "TransactionConflict",
    "RequestLimitExceeded",
    *THROTTLING_CODES,
)


def statement_outcome(code: str) -> type[Exception]:
    """One batch statement's error code as a domain outcome (its class)."""
    if code in ("ConditionalCheckFailed", *CONDITION_FAILED_CODES):
        return ConditionFailed
    if code in STATEMENT_RETRYABLE_CODES:
        return RetryableError
    return FatalError
