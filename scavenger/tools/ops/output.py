"""Where operator commands write, as the AWS CLI does: the requested output (a table,
a report, or with ``--json`` one JSON object) on stdout; progress, warnings, log
lines and errors on stderr. With ``--json``, stdout holds only the JSON object and
the human rendering of the same report goes to stderr."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from scavenger.expiry import parse_instant

PIPE_WIDTH = 160


class _Mode:
    json = False


def json_requested(requested: bool) -> None:
    """Set once per command (``--json``): where :func:`console` sends the human report."""
    _Mode.json = requested


def console() -> Console:
    """The requested human output: stdout, or stderr when ``--json`` holds stdout."""
    return _console(stderr=_Mode.json)


def messages() -> Console:
    """Progress bars, spinners, warnings and notes: always stderr."""
    return _console(stderr=True)


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        terminal = False
    # A pipe or a file gets wide tables rather than 80 columns of wrapped cells.
    width = None if terminal else PIPE_WIDTH
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def print_json(report: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(report, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        return None


def seconds_between(
    start: str | None, end: str | None, now: datetime | None = None
) -> float | None:
    """Seconds from ``start`` to ``end`` (or to now when ``end`` is None)."""
    begin = parse_time(start)
    if begin is None:
        return None
    finish = parse_time(end) if end else (now or datetime.now(UTC))
    if finish is None:
        return None
    return max(0.0, (finish - begin).total_seconds())


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def ago(timestamp: str | None, now: datetime | None = None) -> str:
    seconds = seconds_between(timestamp, None, now)
    return "-" if seconds is None else f"{human_duration(seconds)} ago"


class ProgressBars:
    """Progress bars (label, bar, done/total, detail, elapsed) live while in ``with``;
    the demo's and the bench's observers draw on them."""

    def __init__(self, console: Console, *, label_width: int, transient: bool):
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn(f"[bold]{{task.description:<{label_width}}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=transient,
        )
        self._sweep_started = 0.0

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def sweep_started(self) -> None:
        self._sweep_started = time.monotonic()

    def deletes_detail(self, deleted: int) -> str:
        """Deletes so far, and their rate since :meth:`sweep_started`."""
        elapsed = time.monotonic() - self._sweep_started
        rate = deleted / elapsed if elapsed > 0 else 0.0
        return f"{deleted:,} deleted  {rate:,.0f}/s"
