"""``scavenger local up`` / ``scavenger local down``: a local stack that stays up.

``up`` prints the environment to export, and nothing else, on stdout, so that
``eval "$(scavenger local up)"`` points this shell's ``scavenger`` (and any AWS
client) at the stack; progress and a summary go to stderr. ``--json`` prints the
same as one JSON object instead. ``down`` stops what ``up`` started here.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from scavenger import aws
from scavenger.errors import ScavengerError
from scavenger.tools.local.emulator import DYNAMODB_BACKENDS, default_backend, require_backend
from scavenger.tools.ops.context import aws_errors_as_user_errors
from scavenger.tools.ops.output import messages, print_json

if TYPE_CHECKING:
    from scavenger.tools.local.stack import StackState


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("up", "down"),
        help="up: start the emulators and provision; down: stop what up started here",
    )
    parser.add_argument(
        "--dynamodb",
        choices=DYNAMODB_BACKENDS,
        help="DynamoDB emulator; SQS always runs on moto (default: dynamodb-local where "
        "Java 17+ is installed, moto otherwise)",
    )
    parser.add_argument(
        "--seed-items",
        type=int,
        default=0,
        metavar="N",
        help="seed N demo items into the Workers table (default: %(default)s)",
    )
    parser.add_argument(
        "--segments",
        type=int,
        default=4,
        metavar="N",
        help="segments of the sweep written to the config (default: %(default)s)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite an existing config file (--config)"
    )


def run(args: argparse.Namespace) -> int:
    from scavenger.tools.local import stack  # imports boto3; after argument parsing

    if args.endpoint_url or args.stack:
        given = "--endpoint-url" if args.endpoint_url else "--stack"
        raise ScavengerError(f"{given}: `scavenger local` starts its own emulators on loopback")
    if args.action == "down":
        return down(args)
    options = stack.UpOptions(
        backend=args.dynamodb or "moto",
        region=aws.resolve_region(args.region),
        config=Path(args.config),
        force=args.force,
        seed_items=args.seed_items,
        segments=args.segments,
    )
    # After the checks: a mistake stays the only line, even where Java is missing.
    options = dataclasses.replace(options, backend=default_backend(args.dynamodb, None))
    require_backend(options.backend)
    with aws_errors_as_user_errors():
        state, started = stack.up(options, StageLines())
    lines = stack.exports(state.endpoints)
    announce(state, started)
    if args.json:
        print_json(
            {
                "started": started,
                "environment": state.endpoints.environment(base={}),
                "resources": state.resources,
                "config": state.config,
                "dynamodb": state.backend,
                "pids": [process.pid for process in state.processes],
            }
        )
        return 0
    for line in lines:
        print(line)
    return 0


def down(args: argparse.Namespace) -> int:
    """``local down``: stop what ``up`` started here (nothing there is fine)."""
    from scavenger.tools.local import stack

    out = messages()
    stopped = stack.down()
    if stopped is None:
        out.print(f"no local stack here (no {stack.STATE_FILE} in this directory)")
    else:
        pids = ", ".join(str(process.pid) for process in stopped.processes)
        out.print(f"local stack stopped (processes {pids}); removed {stack.STATE_FILE}")
    if args.json:
        print_json({"stopped": stopped is not None})
    return 0


def announce(state: StackState, started: bool) -> None:
    """One line on stderr: the stack ``up`` started, or the one already up here."""
    if started:
        messages().print(
            f"local stack up: SQS on moto at {state.sqs}, DynamoDB on {state.backend} at "
            f"{state.dynamodb}; table {state.resources['table']}"
            + (f" ({state.seeded_items} items seeded)" if state.seeded_items else "")
            + f", queue, DLQ and ledger {state.resources['ledger_table']}; "
            f"wrote {escape(state.config)}. `scavenger local down` stops it.",
            markup=False,
        )
    else:
        messages().print(
            f"a local stack is already up here (server pid {state.server.pid}, config "
            f"{state.config}); its environment follows",
            markup=False,
        )


class StageLines:
    """Progress of ``up`` on stderr: one line per step, a count while seeding."""

    def __init__(self) -> None:
        self.out = messages()

    def stage(self, text: str) -> None:
        self.out.print(f"- {text}", markup=False, style="dim")

    def seeding(self, done: int, total: int) -> None:
        if done == total:
            self.out.print(f"- seeded {total} items", markup=False, style="dim")

    def sweeping(self, done_segments: int, total_segments: int, deleted: int) -> None:
        pass
