"""``scavenger status --watch`` as a user runs it: in a pseudo-terminal, against moto on
loopback, while this test works the run's segments one by one. The view updates, ends
when the run is done, and gives the terminal back on Ctrl-C; --json is JSON Lines."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from typing import Any

import pytest

from planner.handler import handler as planner_handler
from scavenger import aws
from scavenger.records import Counts, RunRecord, SegmentState
from scavenger.runtime import lambda_runtime
from scavenger.tools.local.emulator import Endpoints
from scavenger.tools.ops.watch import fraction_scanned, observe
from scavenger.tools.provision import create_ledger_table, create_queues
from tests.conftest import configure_sweeps, roomy_context, sqs_event
from tests.runs import seeded_table
from tests.sweeps import sweep_spec
from worker.handler import handler as worker_handler

pytestmark = pytest.mark.integration

TABLE = "Watched"
SEGMENTS = 4
SWEEP = sweep_spec("watched", TABLE, segments=SEGMENTS)
SHOW_CURSOR = b"\x1b[?25h"
HIDE_CURSOR = b"\x1b[?25l"


@pytest.fixture
def deployment(emulator: Endpoints, monkeypatch: pytest.MonkeyPatch, tmp_path) -> dict[str, str]:
    """A seeded table, ledger and queues on the loopback emulator; the environment a user
    would export for it (also this process's, so the test can play the fleet)."""
    monkeypatch.chdir(tmp_path)
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    suffix = os.urandom(3).hex()
    ledger = f"ledger-{suffix}"
    create_ledger_table(dynamodb, ledger)
    queues = create_queues(sqs, f"watch-{suffix}", visibility_timeout=30)
    table = f"{TABLE}-{suffix}"
    seeded_table(dynamodb, table, count=80)
    monkeypatch.setenv("SCAVENGER_QUEUE_URL", queues.queue_url)
    monkeypatch.setenv("SCAVENGER_DLQ_URL", queues.dlq_url)
    monkeypatch.setenv("SCAVENGER_LEDGER_TABLE", ledger)
    configure_sweeps(monkeypatch, {**SWEEP, "table": table})
    return dict(os.environ)


def start_run() -> str:
    (run,) = planner_handler({"sweep": "watched"}, roomy_context())["runs"]
    return str(run["run_id"])


def work_one_segment() -> bool:
    """Receive one segment message, sweep it, acknowledge it; False when none is left."""
    sqs = aws.client("sqs")
    url = os.environ["SCAVENGER_QUEUE_URL"]
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    if not messages:
        return False
    response = worker_handler(sqs_event(messages, "arn:aws:sqs:::watch"), roomy_context())
    assert response["batchItemFailures"] == []
    sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    return True


def in_terminal(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """``argv`` with a pseudo-terminal as its controlling terminal (stdin, stdout, stderr),
    SIGINT at its default, as an interactive shell starts it."""
    master, slave = os.openpty()

    def take_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"},
        preexec_fn=take_terminal,
        close_fds=True,
    )
    os.close(slave)
    return process, master


def read_available(master: int, timeout: float) -> bytes:
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def read_until(master: int, marker: bytes, timeout: float = 30.0) -> bytes:
    """What the terminal shows until ``marker`` appears: the CLI's start-up takes
    seconds on a loaded machine, and nothing may be worked on before its first frame."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        seen += read_available(master, 0.2)
    return seen


def scavenger(*args: str) -> list[str]:
    return [sys.executable, "-m", "scavenger.tools.cli", *args]


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_watch_redraws_as_segments_finish_and_ends_with_the_run(deployment, reaper) -> None:
    run_id = start_run()
    lambda_runtime().sleep = lambda seconds: None
    process, master = in_terminal(
        scavenger("status", "--watch", run_id, "--interval", "0.2"), deployment
    )
    reaper.append(process)
    output = read_until(master, b"0/4 done")  # the first frames: nothing done yet
    assert b"0/4 done" in output
    frames = [output]
    while work_one_segment():
        frames.append(read_available(master, 1.0))
    process.wait(timeout=30)
    frames.append(read_available(master, 1.0))
    screen = b"".join(frames)

    assert process.returncode == 0
    for done in range(SEGMENTS + 1):
        assert f"{done}/{SEGMENTS} done".encode() in screen
    assert b"deletes/s now" in screen and b"ETA" in screen and b"DLQ 0" in screen
    assert screen.count(b"\x1b[") > SEGMENTS  # redrawn in place, not appended
    assert screen.rindex(SHOW_CURSOR) > screen.index(HIDE_CURSOR)
    assert re.search(rb"  done  elapsed", screen)  # the last frame's header: the run is done


def test_ctrl_c_stops_the_watch_and_restores_the_terminal(deployment, reaper) -> None:
    run_id = start_run()  # nobody works on it: it stays running
    process, master = in_terminal(
        scavenger("status", "--watch", run_id, "--interval", "0.2"), deployment
    )
    reaper.append(process)
    before = read_until(master, b"0/4 done")
    assert HIDE_CURSOR in before and b"0/4 done" in before
    before_attributes = termios.tcgetattr(master)

    os.write(master, b"\x03")  # Ctrl-C, through the terminal's line discipline
    process.wait(timeout=10)
    after = read_available(master, 1.0)

    assert process.returncode == 130
    assert SHOW_CURSOR in after
    assert b"interrupted" in after and b"Traceback" not in before + after
    assert termios.tcgetattr(master) == before_attributes


def test_json_lines_one_object_per_refresh_until_done(deployment) -> None:
    run_id = start_run()
    lambda_runtime().sleep = lambda seconds: None
    process = subprocess.Popen(
        scavenger("status", "--watch", run_id, "--json", "--interval", "0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=deployment,
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # the first refresh, before any work
    while work_one_segment():
        time.sleep(0.5)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 0, err
    lines = [json.loads(line) for line in (first + out).decode().splitlines()]
    assert len(lines) >= SEGMENTS
    assert all(line["run_id"] == run_id for line in lines)
    assert [line["segments_done"] for line in lines] == sorted(
        line["segments_done"] for line in lines
    )
    assert lines[0]["segments_done"] == 0 and lines[0]["status"] == "running"
    assert lines[-1]["status"] == "done" and lines[-1]["fraction_scanned"] == 1.0
    assert lines[-1]["deleted"] > 0 and lines[-1]["dlq_messages"] == 0
    assert any(line["deletes_per_second_now"] for line in lines)


# -- the figures, without a terminal ----------------------------------------------------


def segment(number: int, status: str, scanned: int) -> SegmentState:
    return SegmentState(
        run_id="r",
        segment=number,
        status=status,
        hop=0,
        cursor=None,
        checkpoints=0,
        counts=Counts(scanned=scanned, deleted=scanned // 2),
    )


def test_fraction_counts_done_segments_whole_and_open_ones_by_their_share() -> None:
    segments = [segment(0, "done", 10), segment(1, "running", 50), segment(2, "pending", 0)]
    # 300 items over 3 segments: 100 each; the running one is half way.
    assert fraction_scanned(segments, 3, 300) == pytest.approx(0.5)
    # An open segment past its share is not finished; an unknown count uses segments done.
    assert fraction_scanned([segment(0, "running", 900)], 1, 300) == 0.99
    assert fraction_scanned(segments, 3, 0) == pytest.approx(1 / 3)


def test_eta_and_rates_follow_the_fraction_and_the_previous_refresh() -> None:
    from datetime import UTC, datetime

    run = RunRecord(
        run_id="r",
        sweep="s",
        table="t",
        total_segments=2,
        cutoff="2026-01-01T00:00:00Z",
        dry_run=False,
        created_at="2026-01-02T00:00:00Z",
    )
    at = datetime(2026, 1, 2, 0, 0, 30, tzinfo=UTC)
    first = observe(
        run,
        [segment(0, "done", 100), segment(1, "pending", 0)],
        table_items=200,
        dlq_messages=1,
        previous=None,
        seconds_since_previous=None,
        now=at,
    )
    assert first.fraction_scanned == 0.5 and first.eta_seconds == 30.0
    assert first.deletes_per_second_now is None and first.deletes_per_second_average == 1.7
    second: Any = observe(
        run,
        [segment(0, "done", 100), segment(1, "running", 60)],
        table_items=200,
        dlq_messages=1,
        previous=first,
        seconds_since_previous=2.0,
        now=at,
    )
    assert second.deletes_per_second_now == 15.0
    assert second.segments_running == 1 and second.dlq_messages == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "--watch"], "no runs in the ledger to watch"),
        (["status", "--watch", "--interval", "0"], "--interval: 0.0 must be greater than zero"),
        (["status", "--watch", "nope"], "run nope is not in the ledger"),
    ],
)
def test_watch_mistakes_are_one_line(stack, tmp_path, monkeypatch, capsys, argv, message) -> None:
    from scavenger.tools.cli import main

    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
