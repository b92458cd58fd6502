"""``scavenger dlq``: the DLQ's messages, without consuming them.

Each message is received with a short visibility timeout and made visible again
as soon as the listing is complete; if the listing is killed, SQS restores them
when the timeout runs out. The ledger adds each segment's status and last error.
"""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from scavenger.dlq import DeadLetter, DeadLetterQueue
from scavenger.errors import ScavengerError
from scavenger.tools.ops.context import Operator, aws_errors_as_user_errors, engine_logs_on_stderr
from scavenger.tools.ops.dlq import LedgerView, ledger_views
from scavenger.tools.ops.output import console, print_json

DEFAULT_MAX = 100
MAX_ERROR_SHOWN = 160


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max", type=int, default=DEFAULT_MAX, metavar="N", help="list at most N (default: 100)"
    )


def run(args: argparse.Namespace) -> int:
    if args.max < 1:
        raise ScavengerError(f"--max: {args.max} must be at least 1")
    with aws_errors_as_user_errors(), engine_logs_on_stderr():
        operator = Operator.from_args(args)
        dlq = DeadLetterQueue(operator.sqs, operator.resources.dlq_url)
        visible, in_flight = dlq.counts()
        letters = dlq.peek(args.max) if visible else []
        views = ledger_views(letters, operator.ledger)
    render(letters, views, visible + in_flight)
    if args.json:
        print_json(
            {
                "dlq_url": dlq.url,
                "approximate_messages": visible + in_flight,
                "listed": len(letters),
                "messages": [
                    letter.to_json() | (views[letter.key].to_json() if letter.key in views else {})
                    for letter in letters
                ],
            }
        )
    return 0


def render(letters: list[DeadLetter], views: dict[tuple[str, int], LedgerView], total: int) -> None:
    out = console()
    if not letters:
        out.print("the DLQ is empty" if total == 0 else f"listed none of about {total} messages")
        return
    table = Table(title=f"DLQ: {len(letters)} listed of about {total}", title_justify="left")
    for column in ("message", "run", "sweep", "seg", "hop", "receives", "sent", "ledger"):
        table.add_column(column)
    table.add_column("last error", overflow="fold")
    for letter in letters:
        if letter.segment is None:
            table.add_row(
                letter.message_id[:8],
                "-",
                "-",
                "-",
                "-",
                str(letter.receive_count),
                letter.sent_at or "-",
                "not a segment message",
                escape((letter.invalid or "")[:MAX_ERROR_SHOWN]),
            )
            continue
        view = views.get((letter.segment.run_id, letter.segment.segment))
        ledger = "-"
        if view is not None:
            ledger = f"{view.status} hop {view.hop}" + (
                " (stale: redrive drops it)" if view.stale else ""
            )
        table.add_row(
            letter.message_id[:8],
            escape(letter.segment.run_id),
            escape(letter.segment.sweep),
            str(letter.segment.segment),
            str(letter.segment.hop),
            str(letter.receive_count),
            letter.sent_at or "-",
            ledger,
            escape(((view.last_error if view else None) or "")[:MAX_ERROR_SHOWN]),
        )
    out.print(table)
    if total > len(letters):
        out.print(
            f"{total - len(letters)} more not listed (raise --max, or held behind their group)"
        )
