"""The ``scavenger`` operator CLI.

Each command lives in ``scavenger.tools.commands.<name>`` and is imported only when it
runs. User mistakes end as one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn
from urllib.parse import urlsplit

from botocore.utils import is_valid_uri

from scavenger.errors import ScavengerError
from scavenger.tools.ops import output

COMMANDS: dict[str, str] = {
    "demo": "run the whole system on a local emulator and check the result",
    "local": "start (up) or stop (down) a local stack that stays up for the other commands",
    "plan": "plan a run now, as the scheduled planner does",
    "work": "run a local worker fleet on the configured queue until it drains",
    "status": "list runs, or one run's segments",
    "requeue": "re-enqueue segments of a run from their checkpoint",
    "redrive": "move DLQ messages back to the queue, never losing one",
    "dlq": "list DLQ messages without consuming them",
    "bench": "throughput figures on the local emulator",
}

EXIT_USAGE = 2
# Variables boto3 reads an endpoint from; every client honours them.
ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_CLOUDFORMATION",
)
# The user:password@ part of any URL an error message quotes.
URL_CREDENTIALS = re.compile(r"(?<=://)[^\s/@]+@")


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end as one line on stderr (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def redact(text: str) -> str:
    """``text`` with the credentials of any URL in it replaced by ``***``."""
    return URL_CREDENTIALS.sub("***@", text)


def one_line(text: str) -> str:
    """``text`` safe to print as one line: credentials redacted, line breaks and other
    control characters (an argument may hold any) escaped."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in redact(text)
    )


def check_endpoints(endpoint_url: str | None, env: Mapping[str, str]) -> None:
    """Refuse an endpoint boto3 would choke on (a traceback) or one carrying credentials."""
    candidates = [("--endpoint-url", endpoint_url)] + [
        (name, env.get(name)) for name in ENDPOINT_VARIABLES
    ]
    for source, url in candidates:
        if not url:
            continue
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (a port out of range raises here)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not is_valid_uri(url):
            raise ScavengerError(
                f"{source}: {redact(url)!r} is not an http(s)://host[:port] endpoint URL"
            )
        if parts.username is not None or parts.password is not None:
            raise ScavengerError(
                f"{source}: the URL carries credentials (user:password@); remove them and "
                "pass credentials the AWS way (environment, profile or role)"
            )


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
        "--json",
        action="store_true",
        help="print one JSON object on stdout (the human report then goes to stderr)",
    )
    return parent


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:  # type: ignore[type-arg]
    parser = OneLineParser(
        prog="scavenger", description="Delete stale DynamoDB items with a fleet of workers."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser, subparsers


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` prints every thread's stack: how to see where a command hangs.
    Only where stderr is a real file (not when a test captures it)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, subparsers = build_parser()
    parent = common_options()
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    modules = {}
    for name, summary in COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary, parents=[parent])
        if name == command:
            modules[name] = importlib.import_module(f"scavenger.tools.commands.{name}")
            modules[name].add_arguments(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _stacks_on_sigusr1()
    output.json_requested(bool(getattr(args, "json", False)))
    try:
        check_endpoints(args.endpoint_url, os.environ)
        return int(modules[args.command].run(args))
    except ScavengerError as exc:
        print(f"scavenger {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"scavenger {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
