"""Where the functions' logs go, and which of them are kept."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class FunctionLogs:
    """Where the functions' logs go: the path asked for, or a temporary file that is
    removed when the check passes (or when nothing ran) and otherwise kept and named:
    in the report, or in a note on the exception."""

    def __init__(self, asked: Path | None, prefix: str):
        self.asked = asked
        self.path = asked or _temporary_log(prefix)

    @contextlib.contextmanager
    def noted(self) -> Iterator[Path]:
        try:
            yield self.path
        except BaseException as exc:
            if self.asked is None and _is_empty(self.path):
                self.path.unlink(missing_ok=True)  # nothing ran: nothing to keep
            else:
                exc.add_note(f"function logs: {self.path}")
            raise

    def settle(self, ok: bool) -> str | None:
        """The log's path to report; ``None`` (and the file gone) when it is not kept."""
        if ok and self.asked is None:
            self.path.unlink(missing_ok=True)
            return None
        return str(self.path)


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return True


def _temporary_log(prefix: str) -> Path:
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
    os.close(handle)
    return Path(name)
