"""Resource discovery: config, then environment, then the stack's outputs; the DLQ
also from the queue's redrive policy. Stubbed clients, no network."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from scavenger.errors import ScavengerError
from scavenger.tools.resources import discover

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/scavenger.fifo"
DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/scavenger-dlq.fifo"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:scavenger-dlq.fifo"


def client(service):
    return boto3.client(service, region_name="us-east-1")


def stack_client(outputs, stack="prod"):
    cloudformation = client("cloudformation")
    stubber = Stubber(cloudformation)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": stack,
                    "CreationTime": "2026-11-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                }
            ]
        },
        {"StackName": stack},
    )
    stubber.activate()
    return cloudformation


def never_called():
    raise AssertionError("CloudFormation must not be asked without --stack")


def from_queue_url_alone(sqs):
    """The resources when the environment names the queue and nothing else."""
    return discover(
        config_resources={},
        env={"SCAVENGER_QUEUE_URL": QUEUE},
        stack=None,
        cloudformation=never_called,
        sqs=sqs,
    )


def test_config_wins_over_environment_and_each_says_where_it_came_from():
    resources = discover(
        config_resources={"queue_url": QUEUE},
        env={"SCAVENGER_QUEUE_URL": "elsewhere", "SCAVENGER_LEDGER_TABLE": "ledger"},
        stack=None,
        cloudformation=never_called,
        sqs=None,
    )

    assert resources.queue_url == QUEUE
    assert resources.ledger_table == "ledger"
    assert resources.source("queue_url") == "config [resources] queue_url"
    assert resources.source("ledger_table") == "SCAVENGER_LEDGER_TABLE"


def test_stack_outputs_fill_what_config_and_environment_leave_out():
    cloudformation = stack_client({"QueueUrl": QUEUE, "DlqUrl": DLQ, "LedgerTableName": "ledger"})

    resources = discover(
        config_resources={},
        env={"SCAVENGER_LEDGER_TABLE": "ledger"},
        stack="prod",
        cloudformation=lambda: cloudformation,
        sqs=None,
    )

    assert (resources.queue_url, resources.dlq_url, resources.ledger_table) == (
        QUEUE,
        DLQ,
        "ledger",
    )
    assert resources.source("dlq_url") == "stack prod output DlqUrl"


def test_stack_that_disagrees_with_the_environment_is_refused():
    cloudformation = stack_client({"QueueUrl": QUEUE})

    with pytest.raises(ScavengerError, match=r"--stack prod: its QueueUrl .* SCAVENGER_QUEUE_URL"):
        discover(
            config_resources={},
            env={"SCAVENGER_QUEUE_URL": "https://sqs.example/other.fifo"},
            stack="prod",
            cloudformation=lambda: cloudformation,
            sqs=None,
        )


def test_unknown_stack_is_one_line():
    cloudformation = client("cloudformation")
    stubber = Stubber(cloudformation)
    stubber.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id nope does not exist"
    )
    stubber.activate()

    with pytest.raises(ScavengerError) as error:
        discover(
            config_resources={},
            env={},
            stack="nope",
            cloudformation=lambda: cloudformation,
            sqs=None,
        )
    assert str(error.value) == "--stack nope: ValidationError: Stack with id nope does not exist"


def test_dlq_is_found_from_the_queue_redrive_policy():
    sqs = client("sqs")
    stubber = Stubber(sqs)
    policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 5})
    stubber.add_response(
        "get_queue_attributes",
        {"Attributes": {"RedrivePolicy": policy}},
        {"QueueUrl": QUEUE, "AttributeNames": ["RedrivePolicy"]},
    )
    stubber.add_response(
        "get_queue_url",
        {"QueueUrl": DLQ},
        {"QueueName": "scavenger-dlq.fifo", "QueueOwnerAWSAccountId": "123456789012"},
    )
    stubber.activate()

    resources = from_queue_url_alone(sqs)

    assert resources.dlq_url == DLQ
    assert resources.source("dlq_url") == "the queue's redrive policy"
    stubber.assert_no_pending_responses()


def test_queue_without_redrive_policy_and_no_dlq_anywhere_is_one_line():
    sqs = client("sqs")
    stubber = Stubber(sqs)
    stubber.add_response("get_queue_attributes", {"Attributes": {}})
    stubber.activate()
    resources = from_queue_url_alone(sqs)

    assert resources.optional_dlq_url() is None
    with pytest.raises(ScavengerError, match=r"^DLQ: not found: "):
        _ = resources.dlq_url


@pytest.mark.parametrize(
    ("attribute", "variable"),
    [("queue_url", "SCAVENGER_QUEUE_URL"), ("ledger_table", "SCAVENGER_LEDGER_TABLE")],
)
def test_missing_resource_names_every_place_it_could_come_from(attribute, variable):
    resources = discover(
        config_resources={}, env={}, stack=None, cloudformation=never_called, sqs=None
    )

    with pytest.raises(ScavengerError) as error:
        getattr(resources, attribute)
    message = str(error.value)
    assert f"[resources] {attribute}" in message
    assert variable in message
    assert "--stack NAME" in message


@pytest.mark.parametrize("stack", ["\x1f", "9lives", "my stack", "a" * 129, "prod;rm"])
def test_a_malformed_stack_name_is_a_one_line_error_before_any_call(stack):
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    # No response is queued on the stubber: any call would fail the test.
    with Stubber(cloudformation), pytest.raises(ScavengerError, match="not a stack name") as raised:
        discover(
            config_resources={},
            env={},
            stack=stack,
            cloudformation=lambda: cloudformation,
            sqs=None,
        )

    assert "\n" not in str(raised.value)
