"""The ``scavenger`` operator CLI.

Each command lives in ``scavenger.commands.<name>`` and is imported only when it
runs. User mistakes end as one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from scavenger.errors import ScavengerError

COMMANDS: dict[str, str] = {
    "demo": "run the whole system on a local emulator and check the result",
    "plan": "plan a run now, as the scheduled planner does",
    "work": "run a local worker fleet on the configured queue until it drains",
    "status": "list runs, or one run's segments",
    "requeue": "re-enqueue segments of a run from their checkpoint",
    "redrive": "move DLQ messages back to the queue, never losing one",
    "dlq": "list DLQ messages without consuming them",
    "bench": "throughput figures on the local emulator",
}

EXIT_USAGE = 2


def common_options() -> argparse.ArgumentParser:
    """Options every command takes: where the config and the AWS endpoint are."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config", default="scavenger.toml", help="sweep configuration (default: %(default)s)"
    )
    parent.add_argument("--endpoint-url", help="AWS endpoint (default: $AWS_ENDPOINT_URL)")
    parent.add_argument("--region", help="AWS region (default: $AWS_REGION)")
    parent.add_argument(
        "--stack", help="find the queue, DLQ and ledger in this CloudFormation stack's outputs"
    )
    parent.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout, human text on stderr"
    )
    return parent


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:  # type: ignore[type-arg]
    parser = argparse.ArgumentParser(
        prog="scavenger", description="Delete stale DynamoDB items with a fleet of workers."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, subparsers = build_parser()
    parent = common_options()
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    modules = {}
    for name, summary in COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary, parents=[parent])
        if name == command:
            modules[name] = importlib.import_module(f"scavenger.commands.{name}")
            modules[name].add_arguments(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(modules[args.command].run(args))
    except ScavengerError as exc:
        print(f"scavenger {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"scavenger {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
