import pytest
from botocore.exceptions import ClientError

from scavenger.errors import ConditionFailed, FatalError, RetryableError, Throttled, classify
from scavenger.retry import BASE_WAIT_SECONDS, THROTTLED_BASE_WAIT_SECONDS, RetryPolicy
from scavenger.sweep import Pacer


class Budget:
    def __init__(self, seconds):
        self.seconds = seconds

    def remaining_seconds(self):
        return self.seconds


def client_error(code, status=400):
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "DeleteItem",
    )


# The retryable faults, each with the least a retry of it waits: throttling waits longer.
RETRYABLE = [
    ("ProvisionedThroughputExceededException", 400, THROTTLED_BASE_WAIT_SECONDS),
    ("ThrottlingException", 400, THROTTLED_BASE_WAIT_SECONDS),
    ("InternalServerError", 500, BASE_WAIT_SECONDS),
    ("Whatever", 503, BASE_WAIT_SECONDS),
]


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [(code, status, RetryableError) for code, status, _ in RETRYABLE]
    + [
        ("ConditionalCheckFailedException", 400, ConditionFailed),
        ("AccessDeniedException", 400, FatalError),
        ("ResourceNotFoundException", 400, FatalError),
        ("ValidationException", 400, FatalError),
    ],
)
def test_error_codes_map_to_domain_outcomes_in_one_place(code, status, kind):
    assert isinstance(classify(client_error(code, status)), kind)


def failing(times, error):
    calls = {"n": 0}

    def operation():
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return "ok"

    return operation, calls


def test_throttled_call_is_retried_and_each_retry_counted():
    retries = []
    sleeps = []
    policy = RetryPolicy(Budget(60), sleep=sleeps.append, on_retry=lambda: retries.append(1))
    operation, calls = failing(3, client_error("ThrottlingException"))

    assert policy.call(operation, "DeleteItem") == "ok"

    assert calls["n"] == 4
    assert len(retries) == 3
    assert all(0 <= pause <= 5 for pause in sleeps)


def test_retries_stop_when_the_budget_is_spent():
    budget = Budget(10)
    policy = RetryPolicy(budget, floor_seconds=2, sleep=lambda s: setattr(budget, "seconds", 1))
    operation, calls = failing(100, client_error("ThrottlingException"))

    with pytest.raises(RetryableError):
        policy.call(operation, "Scan")

    assert calls["n"] <= 3


def test_waits_never_sleep_past_the_budget_floor():
    sleeps = []
    policy = RetryPolicy(Budget(2.5), floor_seconds=2, max_attempts=6, sleep=sleeps.append)
    operation, _ = failing(100, client_error("ThrottlingException"))

    with pytest.raises(RetryableError):
        policy.call(operation, "Scan")

    assert sleeps and max(sleeps) <= 0.5


@pytest.mark.parametrize(("code", "status", "least"), RETRYABLE)
def test_every_retry_waits_first_and_throttling_waits_longer(code, status, least):
    sleeps = []
    calls = []

    def operation():
        calls.append(len(sleeps))
        if len(calls) <= 4:
            raise client_error(code, status)
        return "ok"

    assert RetryPolicy(Budget(60), sleep=sleeps.append).call(operation, "Scan") == "ok"

    # Attempt n runs after n - 1 sleeps: no retry runs at once, not even the first.
    assert calls == [0, 1, 2, 3, 4]
    assert len(sleeps) == 4
    assert all(least <= pause <= 5 for pause in sleeps)


def test_throttling_and_transient_faults_are_told_apart():
    assert isinstance(classify(client_error("ThrottlingException")), Throttled)
    assert isinstance(classify(client_error("SlowDown", 503)), Throttled)
    transient = classify(client_error("InternalServerError", 500))
    assert isinstance(transient, RetryableError)
    assert not isinstance(transient, Throttled)


def test_attempts_are_capped_including_the_first():
    policy = RetryPolicy(Budget(60), max_attempts=4, sleep=lambda s: None)
    operation, calls = failing(100, client_error("ServiceUnavailable", 503))

    with pytest.raises(RetryableError):
        policy.call(operation, "Scan")

    assert calls["n"] == 4


def test_fatal_and_condition_errors_are_not_retried():
    policy = RetryPolicy(Budget(60), sleep=lambda s: None)
    for error, kind in [
        (client_error("AccessDeniedException"), FatalError),
        (client_error("ConditionalCheckFailedException"), ConditionFailed),
    ]:
        operation, calls = failing(1, error)
        with pytest.raises(kind):
            policy.call(operation, "DeleteItem")
        assert calls["n"] == 1


def test_pacer_spaces_deletes_to_the_configured_rate():
    now = {"t": 100.0}
    pacer = Pacer(4, clock=lambda: now["t"])
    delays = [pacer.delay() for _ in range(5)]
    assert delays == [0.0, 0.25, 0.5, 0.75, 1.0]
    now["t"] += 10
    assert pacer.delay() == 0.0


def test_pacer_without_a_rate_never_waits():
    assert Pacer(0).delay() == 0.0


def test_each_record_of_a_batch_gets_an_equal_share_and_its_own_margin():
    from scavenger.retry import TimeShares

    clock = Budget(31.5)
    shares = TimeShares(clock, records=3, margin=1.5)

    first = shares.next()
    assert first.remaining_seconds() == pytest.approx(1.5 + 9)  # 27 s spare / 3, plus margin
    clock.seconds -= 10.5  # the first record used all of it
    second = shares.next()
    assert second.remaining_seconds() == pytest.approx(1.5 + 9)
    clock.seconds -= 2  # the second finished early: the third gets the rest
    third = shares.next()
    assert third.remaining_seconds() == pytest.approx(19)


def test_a_batch_with_too_little_time_gives_each_record_only_its_margin():
    from scavenger.retry import TimeShares

    shares = TimeShares(Budget(3.0), records=3, margin=1.5)
    assert shares.next().remaining_seconds() == pytest.approx(1.5)


def test_a_batch_of_deletes_takes_as_many_slots_as_it_has_items():
    pacer = Pacer(10, clock=lambda: 0.0)

    assert pacer.delay(25) == 0.0  # the first batch goes at once ...
    assert pacer.delay(1) == pytest.approx(2.5)  # ... and the next waits for its 25 slots
