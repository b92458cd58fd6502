"""Queue and DLQ: FIFO, SQS-managed encryption, TLS only, redrive and visibility timeout; the
planner failure queue: standard, encrypted, TLS only."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.helpers import (
    WORKER_HANDLER,
    dead_letter_queue,
    function,
    main_queue,
    planner_failure_queue,
)

pytestmark = pytest.mark.infra

FOURTEEN_DAYS = 14 * 24 * 3600


def test_both_queues_are_fifo_and_encrypted_with_sqs_managed_keys(template: Template) -> None:
    template.resource_count_is("AWS::SQS::Queue", 3)
    encrypted_fifo = template.find_resources(
        "AWS::SQS::Queue",
        {"Properties": {"FifoQueue": True, "SqsManagedSseEnabled": True}},
    )
    assert set(encrypted_fifo) == {main_queue(template)[0], dead_letter_queue(template)[0]}


def test_the_planner_failure_queue_is_standard_encrypted_and_keeps_events_14_days(
    template: Template,
) -> None:
    _, queue = planner_failure_queue(template)
    assert "FifoQueue" not in queue
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == FOURTEEN_DAYS


def test_every_queue_refuses_requests_without_tls(template: Template) -> None:
    deny_insecure = {
        "PolicyDocument": {
            "Statement": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Effect": "Deny",
                            "Action": "sqs:*",
                            "Principal": {"AWS": "*"},
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    )
                ]
            )
        }
    }
    policies = template.find_resources("AWS::SQS::QueuePolicy", {"Properties": deny_insecure})
    covered = {ref["Ref"] for p in policies.values() for ref in p["Properties"]["Queues"]}
    assert covered == {
        main_queue(template)[0],
        dead_letter_queue(template)[0],
        planner_failure_queue(template)[0],
    }


def test_failed_segments_park_in_a_fifo_dlq_after_five_receives(template: Template) -> None:
    _, queue = main_queue(template)
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
    _, dlq = dead_letter_queue(template)
    assert dlq["FifoQueue"] is True
    assert "RedrivePolicy" not in dlq


def test_dlq_keeps_messages_for_fourteen_days(template: Template) -> None:
    _, dlq = dead_letter_queue(template)
    assert dlq["MessageRetentionPeriod"] == FOURTEEN_DAYS


def test_segment_queue_deduplicates_by_explicit_id_per_message_group(template: Template) -> None:
    _, queue = main_queue(template)
    assert queue["ContentBasedDeduplication"] is False
    assert queue["DeduplicationScope"] == "messageGroup"
    assert queue["FifoThroughputLimit"] == "perMessageGroupId"


@pytest.mark.parametrize("which", ["default", "custom"])
def test_visibility_timeout_is_at_least_six_times_the_worker_timeout(
    which: str, template: Template, custom_template: Template
) -> None:
    chosen = template if which == "default" else custom_template
    _, worker = function(chosen, WORKER_HANDLER)
    _, queue = main_queue(chosen)
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]


def test_worker_timeout_comes_from_context(custom_template: Template) -> None:
    _, worker = function(custom_template, WORKER_HANDLER)
    _, queue = main_queue(custom_template)
    assert worker["Timeout"] == 900
    assert queue["VisibilityTimeout"] == 5400
