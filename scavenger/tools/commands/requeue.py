"""``scavenger requeue RUN_ID --segment N [--segment M ...] [--from-start] [--force]``
or ``scavenger requeue RUN_ID --halted``.

Re-enqueues segments from their ledger checkpoint (or from the start), in each
segment's own message group; ``--halted`` resumes every halted segment of a run
halted by a systemic error, once its cause is fixed. Every refusal is checked
before anything changes. Running it again after an interruption finishes what the
first run started.
"""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from scavenger.dlq import DeadLetterQueue
from scavenger.errors import ScavengerError
from scavenger.tools.ops.context import Operator, aws_errors_as_user_errors, engine_logs_on_stderr
from scavenger.tools.ops.output import console, print_json
from scavenger.tools.ops.requeue import Requeuer, RequeueReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the run (see `scavenger status`)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--segment",
        dest="segments",
        metavar="N",
        type=int,
        action="append",
        help="segment number; repeat for more",
    )
    which.add_argument(
        "--halted",
        action="store_true",
        help="resume every halted segment from its checkpoint and set the run running again "
        "(after fixing what halted it: `scavenger status` shows the error)",
    )
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="scan the segment again from its start (needed for a done segment)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="requeue even a segment that may be in flight (its older message is then dropped)",
    )


def run(args: argparse.Namespace) -> int:
    if args.halted and (args.from_start or args.force):
        flag = "--from-start" if args.from_start else "--force"
        raise ScavengerError(f"{flag} cannot be used with --halted")
    with aws_errors_as_user_errors(), engine_logs_on_stderr():
        operator = Operator.from_args(args)
        dlq_url = operator.resources.optional_dlq_url()
        requeuer = Requeuer(
            operator.ledger,
            operator.queue,
            DeadLetterQueue(operator.sqs, dlq_url) if dlq_url else None,
        )
        if args.halted:
            record, decisions = requeuer.decide_halted(args.run_id)
        else:
            record, decisions = requeuer.decide(
                args.run_id, args.segments, from_start=args.from_start, force=args.force
            )
        report = requeuer.execute(record, decisions)
    render(report)
    if args.json:
        print_json(report.to_json())
    return 0 if report.ok else 1


def render(report: RequeueReport) -> None:
    out = console()
    out.print(f"requeue of run {report.run_id}")
    table = Table()
    for column in ("segment", "hop", "from", "result"):
        table.add_column(column)
    for outcome in report.outcomes:
        if outcome.sent:
            result = "sent" + (
                " (finished an interrupted requeue)" if outcome.finished_interrupted else ""
            )
            if outcome.note:
                result += f"; {escape(outcome.note)}"
        else:
            result = f"[red]{escape(outcome.error or '')}[/red]"
        table.add_row(
            str(outcome.segment),
            str(outcome.hop),
            "start" if outcome.from_start else "checkpoint",
            result,
        )
    out.print(table)
    if report.resumed_run:
        out.print("the run was halted and is running again")
    if report.reopened_run:
        out.print("the run was done and is running again until these segments finish")
