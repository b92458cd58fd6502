"""``scavenger redrive [--max N] [--dry-run] [--native]``: DLQ messages back to the queue.

Client-side by default: each message is sent to the source queue (same body and
MessageGroupId) before it is deleted from the DLQ, so an interruption can
duplicate a message (the ledger absorbs it) but never lose one. ``--native``
asks SQS to move them (StartMessageMoveTask, on AWS) and follows its progress.
"""

from __future__ import annotations

import argparse
import time

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scavenger.dlq import DeadLetterQueue
from scavenger.errors import ScavengerError
from scavenger.tools.ops.context import Operator, aws_errors_as_user_errors, engine_logs_on_stderr
from scavenger.tools.ops.dlq import MoveTask, NativeMove, Redriver, RedriveReport
from scavenger.tools.ops.output import console, messages, print_json
from scavenger.tools.resources import DLQ_URL, QUEUE_URL

NATIVE_POLL_SECONDS = 2.0
MAX_ERRORS_SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max", type=int, metavar="N", help="move at most N messages")
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be moved, move nothing"
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="let SQS move them (StartMessageMoveTask; AWS only, not emulators)",
    )


def run(args: argparse.Namespace) -> int:
    if args.max is not None and args.max < 1:
        raise ScavengerError(f"--max: {args.max} must be at least 1")
    if args.native and args.max is not None:
        raise ScavengerError("--max cannot be used with --native (a move task moves the whole DLQ)")
    with aws_errors_as_user_errors(), engine_logs_on_stderr():
        operator = Operator.from_args(args)
        queue_url, dlq_url = operator.resources.queue_url, operator.resources.dlq_url
        dlq = DeadLetterQueue(operator.sqs, dlq_url)
        if args.native:
            return native(
                args, NativeMove(operator.sqs, dlq_url, queue_url, args.endpoint_url), dlq
            )
        visible, _ = dlq.counts()
        total = visible if args.max is None else min(visible, args.max)
        with progress_bar("dry run" if args.dry_run else "redrive", total) as advance:
            report = Redriver(dlq, queue_url, on_message=advance).run(
                max_messages=args.max, dry_run=args.dry_run
            )
    render(report, operator.resources.source(QUEUE_URL), operator.resources.source(DLQ_URL))
    if args.json:
        print_json({"mode": "client", **report.to_json()})
    return 0 if report.complete else 1


class progress_bar:
    """A progress bar on stderr; entering returns the 'one more message' callback."""

    def __init__(self, label: str, total: int):
        self.progress = _bar("{task.description}")
        self.task = self.progress.add_task(label, total=total or None)

    def __enter__(self) -> progress_bar.Advance:
        self.progress.start()
        return progress_bar.Advance(self.progress, self.task)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    class Advance:
        def __init__(self, progress: Progress, task: object):
            self.progress = progress
            self.task = task

        def __call__(self) -> None:
            self.progress.advance(self.task)  # type: ignore[arg-type]


def _bar(text: str) -> Progress:
    """A transient bar of moved messages on stderr (none unless it is a terminal)."""
    out = messages()
    return Progress(
        TextColumn(text),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    )


def native(args: argparse.Namespace, move: NativeMove, dlq: DeadLetterQueue) -> int:
    out = console()
    visible, in_flight = dlq.counts()
    if args.dry_run:
        out.print(f"would ask SQS to move about {visible + in_flight} messages back")
        if args.json:
            print_json({"mode": "native", "dry_run": True, "would_move": visible + in_flight})
        return 0
    move.start()
    with _bar("native redrive {task.fields[status]}") as progress:
        task_id = progress.add_task("move", total=None, status="STARTING")

        def show(task: MoveTask) -> None:
            progress.update(task_id, completed=task.moved, total=task.to_move, status=task.status)

        task = move.wait(poll_seconds=NATIVE_POLL_SECONDS, sleep=time.sleep, on_progress=show)
    out.print(
        f"native redrive {task.status}: {task.moved} moved"
        + (f" of {task.to_move}" if task.to_move is not None else "")
    )
    if task.failure_reason:
        out.print(f"failure: {escape(task.failure_reason)}")
    if args.json:
        print_json({"mode": "native", "dry_run": False, **task.to_json()})
    return 0 if task.status == "COMPLETED" else 1


def render(report: RedriveReport, queue_source: str | None, dlq_source: str | None) -> None:
    out = console()
    if report.dry_run:
        out.print(
            f"dry run: would move {report.would_move} message(s); "
            f"{report.invalid} not segment messages would stay in the DLQ"
        )
    else:
        out.print(
            f"moved {report.moved}, failed {report.failed}, "
            f"sent but not deleted {report.sent_not_deleted}, invalid {report.invalid}, "
            f"held back {report.held_back}; the DLQ now holds about {report.remaining}"
        )
    for error in report.errors[:MAX_ERRORS_SHOWN]:
        out.print(f"  {escape(error)}")
    if len(report.errors) > MAX_ERRORS_SHOWN:
        out.print(f"  ... and {len(report.errors) - MAX_ERRORS_SHOWN} more (see --json)")
    if report.sent_not_deleted:
        out.print(
            "run `scavenger redrive` again to delete the copies left in the DLQ "
            "(the duplicates on the queue are dropped by the workers)"
        )
    out.print(f"queue from {queue_source}; DLQ from {dlq_source}", style="dim", markup=False)
