"""DLQ listing and redrive logic over an in-memory FIFO queue pair, and the native
move task over a stubbed client. No network."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from scavenger.dlq import DeadLetter, DeadLetterQueue, redrive_deduplication_id
from scavenger.errors import ScavengerError
from scavenger.message import SegmentMessage
from scavenger.records import Counts, SegmentState
from scavenger.tools.ops.dlq import NativeMove, Redriver
from scavenger.tools.ops.output import human_duration

QUEUE = "https://sqs.example/queue.fifo"
DLQ = "https://sqs.example/dlq.fifo"


def body(segment: int, hop: int = 0) -> str:
    return SegmentMessage(
        run_id="20261123T020000Z-3f9c",
        sweep="stale",
        table="Workers",
        segment=segment,
        total_segments=64,
        cutoff=datetime(2026, 11, 21, 2, tzinfo=UTC),
        hop=hop,
    ).to_json()


class FakeFifo:
    """Two FIFO queues in memory: enough of SQS for the DLQ logic, recording each call."""

    def __init__(self, fail_send_for: set[str] = frozenset(), fail_delete: bool = False):
        self.queues: dict[str, list[dict]] = {QUEUE: [], DLQ: []}
        self.hidden: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.handles = itertools.count()
        self.fail_send_for = fail_send_for
        self.fail_delete = fail_delete

    def put(self, url: str, body: str, group: str) -> str:
        message_id = f"m{len(self.queues[url])}-{group}"
        self.queues[url].append(
            {"MessageId": message_id, "Body": body, "group": group, "receives": 0}
        )
        return message_id

    def receive_message(self, QueueUrl, MaxNumberOfMessages, VisibilityTimeout, **_):
        busy = {m["group"] for m in self.queues[QueueUrl] if m["MessageId"] in self.hidden}
        out = []
        for message in self.queues[QueueUrl]:
            if len(out) == MaxNumberOfMessages:
                break
            if message["MessageId"] in self.hidden or message["group"] in busy:
                continue
            message["receives"] += 1
            self.hidden.add(message["MessageId"])
            out.append(
                {
                    "MessageId": message["MessageId"],
                    "ReceiptHandle": f"{message['MessageId']}#{next(self.handles)}",
                    "Body": message["Body"],
                    "Attributes": {
                        "MessageGroupId": message["group"],
                        "ApproximateReceiveCount": str(message["receives"]),
                        "SentTimestamp": "1795485600000",
                    },
                }
            )
        self.calls.append(("receive", ",".join(m["MessageId"] for m in out)))
        return {"Messages": out}

    def send_message(self, QueueUrl, MessageBody, MessageGroupId, MessageDeduplicationId):
        self.calls.append(("send", MessageBody))
        if MessageBody in self.fail_send_for:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")
        self.put(QueueUrl, MessageBody, MessageGroupId)
        return {"MessageId": "new"}

    def delete_message(self, QueueUrl, ReceiptHandle):
        message_id = ReceiptHandle.rsplit("#", 1)[0]
        self.calls.append(("delete", message_id))
        if self.fail_delete:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteMessage")
        self.queues[QueueUrl] = [m for m in self.queues[QueueUrl] if m["MessageId"] != message_id]
        self.hidden.discard(message_id)

    def change_message_visibility_batch(self, QueueUrl, Entries):
        for entry in Entries:
            self.hidden.discard(entry["ReceiptHandle"].rsplit("#", 1)[0])
        self.calls.append(("restore", str(len(Entries))))
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def get_queue_attributes(self, QueueUrl, AttributeNames):
        visible = [m for m in self.queues[QueueUrl] if m["MessageId"] not in self.hidden]
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(len(visible)),
                "ApproximateNumberOfMessagesNotVisible": str(
                    len(self.queues[QueueUrl]) - len(visible)
                ),
            }
        }


def test_peek_lists_every_message_and_leaves_all_of_them_visible():
    sqs = FakeFifo()
    for segment in range(12):
        sqs.put(DLQ, body(segment), f"stale#{segment}")
    sqs.put(DLQ, "not json", "stale#99")

    letters = DeadLetterQueue(sqs, DLQ).peek(None)

    assert len(letters) == 13
    assert sorted(letter.segment.segment for letter in letters if letter.segment) == list(range(12))
    assert [letter.invalid is not None for letter in letters].count(True) == 1
    assert sqs.hidden == set()
    assert len(sqs.queues[DLQ]) == 13


def test_receive_count_leaves_out_the_listing_own_receive():
    letter = DeadLetter.from_sqs(
        {
            "MessageId": "m",
            "ReceiptHandle": "r",
            "Body": body(3),
            "Attributes": {"MessageGroupId": "stale#3", "ApproximateReceiveCount": "6"},
        }
    )
    assert letter.receive_count == 5
    assert letter.to_json()["segment"] == 3


def test_redrive_sends_each_message_before_deleting_it_keeping_its_group():
    sqs = FakeFifo()
    first = sqs.put(DLQ, body(1), "stale#1")
    second = sqs.put(DLQ, body(2), "stale#2")

    report = Redriver(DeadLetterQueue(sqs, DLQ), QUEUE).run(max_messages=None, dry_run=False)

    assert (report.moved, report.failed, report.remaining) == (2, 0, 0)
    sends_and_deletes = [call for call in sqs.calls if call[0] in ("send", "delete")]
    assert sends_and_deletes == [
        ("send", body(1)),
        ("delete", first),
        ("send", body(2)),
        ("delete", second),
    ]
    assert [(m["Body"], m["group"]) for m in sqs.queues[QUEUE]] == [
        (body(1), "stale#1"),
        (body(2), "stale#2"),
    ]


def test_failed_send_leaves_the_message_and_the_rest_of_its_group_in_the_dlq():
    sqs = FakeFifo(fail_send_for={body(1, hop=0)})
    sqs.put(DLQ, body(1, hop=0), "stale#1")
    sqs.put(DLQ, body(1, hop=1), "stale#1")
    sqs.put(DLQ, body(2), "stale#2")

    report = Redriver(DeadLetterQueue(sqs, DLQ), QUEUE).run(max_messages=None, dry_run=False)

    assert (report.moved, report.failed) == (1, 1)
    assert [m["Body"] for m in sqs.queues[QUEUE]] == [body(2)]
    assert [m["Body"] for m in sqs.queues[DLQ]] == [body(1, hop=0), body(1, hop=1)]
    assert sqs.hidden == set()
    assert not report.complete


def test_failed_delete_is_reported_and_the_copy_stays_visible_for_a_rerun():
    sqs = FakeFifo(fail_delete=True)
    sqs.put(DLQ, body(1), "stale#1")

    report = Redriver(DeadLetterQueue(sqs, DLQ), QUEUE).run(max_messages=None, dry_run=False)

    assert (report.moved, report.sent_not_deleted) == (0, 1)
    assert len(sqs.queues[QUEUE]) == 1 and len(sqs.queues[DLQ]) == 1
    assert sqs.hidden == set()


def test_invalid_messages_stay_in_the_dlq():
    sqs = FakeFifo()
    sqs.put(DLQ, '{"v": 1}', "stale#1")
    sqs.put(DLQ, body(2), "stale#2")

    report = Redriver(DeadLetterQueue(sqs, DLQ), QUEUE).run(max_messages=None, dry_run=False)

    assert (report.moved, report.invalid) == (1, 1)
    assert [m["Body"] for m in sqs.queues[DLQ]] == ['{"v": 1}']


def test_max_and_dry_run_bound_what_moves():
    sqs = FakeFifo()
    for segment in range(5):
        sqs.put(DLQ, body(segment), f"stale#{segment}")
    dlq = DeadLetterQueue(sqs, DLQ)

    dry = Redriver(dlq, QUEUE).run(max_messages=None, dry_run=True)
    assert (dry.would_move, dry.moved, len(sqs.queues[QUEUE])) == (5, 0, 0)

    report = Redriver(dlq, QUEUE).run(max_messages=2, dry_run=False)
    assert (report.moved, len(sqs.queues[QUEUE]), len(sqs.queues[DLQ])) == (2, 2, 3)


def test_redrive_deduplication_id_is_stable_per_message_and_not_the_original():
    original = SegmentMessage.parse(body(1)).deduplication_id()
    assert redrive_deduplication_id("abc") == redrive_deduplication_id("abc")
    assert redrive_deduplication_id("abc") != redrive_deduplication_id("abd")
    assert redrive_deduplication_id("abc") != original


def stubbed_sqs():
    sqs = boto3.client("sqs", region_name="us-east-1")
    stubber = Stubber(sqs)
    for url, name in ((DLQ, "dlq.fifo"), (QUEUE, "queue.fifo")):
        stubber.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": f"arn:aws:sqs:us-east-1:123456789012:{name}"}},
            {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
        )
    return sqs, stubber


def test_native_move_reports_progress_until_the_task_completes():
    sqs, stubber = stubbed_sqs()
    stubber.add_response("start_message_move_task", {"TaskHandle": "handle"})
    for status, moved in (("RUNNING", 3), ("COMPLETED", 7)):
        stubber.add_response(
            "list_message_move_tasks",
            {
                "Results": [
                    {
                        "Status": status,
                        "ApproximateNumberOfMessagesMoved": moved,
                        "ApproximateNumberOfMessagesToMove": 7,
                    }
                ]
            },
        )
    stubber.activate()
    seen = []

    move = NativeMove(sqs, DLQ, QUEUE)
    assert move.start() == "handle"
    task = move.wait(poll_seconds=0, sleep=lambda _: None, on_progress=seen.append)

    assert [(t.status, t.moved) for t in seen] == [("RUNNING", 3), ("COMPLETED", 7)]
    assert task.status == "COMPLETED"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InvalidAction", 400, "does not support StartMessageMoveTask"),
        ("500", 500, "does not support StartMessageMoveTask"),
        ("AccessDenied", 403, "StartMessageMoveTask: AccessDenied"),
    ],
)
def test_native_move_refusals_are_one_line(code, status, expected):
    sqs, stubber = stubbed_sqs()
    stubber.add_client_error("start_message_move_task", code, "nope", http_status_code=status)
    stubber.activate()

    with pytest.raises(ScavengerError) as error:
        NativeMove(sqs, DLQ, QUEUE, "http://localhost:4566").start()
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (5, "5s"), (65, "1m05s"), (3 * 3600 + 60, "3h01m"), (90000, "1d01h")],
)
def test_durations_read_at_a_glance(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("status", "ledger_hop", "letter_hop", "dropped"),
    [
        ("running", 0, 0, False),  # the hop the ledger is at: a redrive resumes it
        ("failed", 2, 2, False),
        ("running", 2, 1, True),  # the segment moved on to a later hop
        ("done", 0, 0, True),  # finished: a worker drops it
        ("done", 1, 3, True),
    ],
)
def test_a_dead_letter_is_stale_when_a_worker_would_drop_it(
    status: str, ledger_hop: int, letter_hop: int, dropped: bool
) -> None:
    state = SegmentState("20261123T020000Z-3f9c", 3, status, ledger_hop, None, 1, Counts())
    assert state.drops(letter_hop) is dropped
