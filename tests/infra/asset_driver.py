"""Runs in a clean interpreter (``python -I -S``) whose path is the Lambda asset and the
packages the Lambda Python runtime provides: imports both handlers and answers one canned
event with each. AWS calls are answered by a botocore hook, so no network is used.

Usage: python -I -S asset_driver.py ASSET_DIR RUNTIME_DIR; prints one JSON object.
"""

import json
import os
import sys

sys.path[:0] = [sys.argv[1], sys.argv[2]]

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "SCAVENGER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo",
        "SCAVENGER_LEDGER_TABLE": "ledger",
        "SCAVENGER_SWEEPS": json.dumps(
            [
                {
                    "name": "stale",
                    "table": "Swept",
                    "age_attribute": "ts",
                    "age_format": "iso8601",
                    "max_age": "48h",
                    "segments": 2,
                }
            ]
        ),
    }
)

unavailable = []
for name in ("moto", "rich", "pytest", "aws_cdk", "scavenger.tools.cli", "scavenger.tools.local"):
    try:
        __import__(name)
    except ImportError:
        unavailable.append(name)

from botocore.awsrequest import AWSResponse  # noqa: E402

from planner.handler import handler as planner_handler  # noqa: E402
from scavenger import aws  # noqa: E402
from worker.handler import handler as worker_handler  # noqa: E402

calls = []
last_params = {}


def remember(params, model, **_):
    last_params[model.name] = params


def answer(model, **_):
    """A canned, successful answer to every call the planner makes."""
    calls.append(model.name)
    params = last_params.get(model.name, {})
    body = {
        "DescribeTable": {
            "Table": {"KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "ItemCount": 0}
        },
        "BatchWriteItem": {"UnprocessedItems": {}},
        "SendMessageBatch": {
            "Successful": [
                {"Id": entry["Id"], "MessageId": entry["Id"], "MD5OfMessageBody": "x"}
                for entry in params.get("Entries", [])
            ],
            "Failed": [],
        },
    }.get(model.name, {})
    http = AWSResponse(url="https://canned", status_code=200, headers={}, raw=None)
    return http, {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}


for service in ("dynamodb", "sqs"):
    events = aws.client(service).meta.events
    events.register("before-parameter-build", remember)
    events.register("before-call", answer)


class Context:
    aws_request_id = "canned"
    function_name = "scavenger"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:scavenger"

    def get_remaining_time_in_millis(self):
        return 60_000


planned = planner_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, Context())
poison = {
    "Records": [
        {
            "messageId": "poison-1",
            "receiptHandle": "r",
            "body": "not a segment message",
            "attributes": {"MessageGroupId": "g"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q.fifo",
            "awsRegion": "us-east-1",
        }
    ]
}
answered = worker_handler(poison, Context())
loaded = sorted(
    name
    for name, module in sys.modules.items()
    if name.split(".")[0] in ("planner", "worker", "scavenger")
)
print(
    json.dumps(
        {
            "unavailable": unavailable,
            "planner": planned,
            "worker": answered,
            "calls": calls,
            "first_party_loaded": loaded,
            "path": sys.path,
        },
        default=str,
    )
)
