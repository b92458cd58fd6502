"""Processes as /proc shows them: who started when, whose child, and stopping a set of
them for certain (a pid is taken with its start time, so a reused pid is never signalled)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Process:
    """A process this stack started: its pid and kernel start time (pids get reused)."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> Process | None:
        started = _start_time(pid)
        return None if started is None else cls(pid, started)

    def alive(self) -> bool:
        return _start_time(self.pid) == self.started

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signum)


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name, the state first and the
    parent pid second (the name may hold spaces); None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def all_pids() -> Iterator[int]:
    """Every pid /proc lists now."""
    return (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())


def children_of(pid: int) -> set[Process]:
    """The live children of ``pid``."""
    found = set()
    for child in all_pids():
        fields = stat_fields(child)
        if fields is not None and int(fields[1]) == pid:
            process = Process.of(child)
            if process is not None:
                found.add(process)
    return found


def stop_processes(processes: tuple[Process, ...]) -> None:
    """SIGTERM the first (a server that stops the rest), then SIGKILL whatever is left."""
    for process in processes[:1]:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while any(process.alive() for process in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in processes:
        process.signal(signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while any(process.alive() for process in processes) and time.monotonic() < deadline:
        time.sleep(0.05)


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if it is gone (or a zombie)."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])
