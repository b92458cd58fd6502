"""Child processes of the local runtime, started as ``python -m scavenger.tools.local.child``.

A fresh interpreter (never a fork of a process that runs threads, never a
re-import of the caller's ``__main__``) that talks to its parent over a socket
pair. It runs in its own session, so a Ctrl-C in the terminal reaches only the
parent, which stops its children; and it exits by itself when the parent goes
away (the socket closes, or it is re-parented).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

ORPHAN_CHECK_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 5.0


class ChildProcess:
    """A child running ``target(connection, payload)``; ``target`` is "module:function"."""

    def __init__(self, target: str, payload: Any):
        parent_end, child_end = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scavenger.tools.local.child", str(child_end.fileno())],
                pass_fds=[child_end.fileno()],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            child_end.close()
        self.connection = Connection(parent_end.detach())
        self.connection.send((target, payload))

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """End it now and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.connection.close()

    def stop(self, message: Any = None) -> None:
        """Ask it to finish (send ``message``, close the socket); kill it if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.connection.send(message)
            self.connection.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT_SECONDS)
        self.kill()


def _exit_when_orphaned() -> None:
    parent = os.getppid()
    while True:
        time.sleep(ORPHAN_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


def main(argv: list[str]) -> None:
    connection = Connection(int(argv[1]))
    threading.Thread(target=_exit_when_orphaned, name="orphan-watch", daemon=True).start()
    try:
        target, payload = connection.recv()
    except (EOFError, OSError):
        return
    module_name, _, function_name = target.partition(":")
    function: Callable[[Connection, Any], None] = getattr(
        importlib.import_module(module_name), function_name
    )
    function(connection, payload)


if __name__ == "__main__":
    main(sys.argv)
