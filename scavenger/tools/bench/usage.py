"""How busy the machine was during a bench run, and what it is."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def machine(load_at_start: tuple[float, float, float] | None = None) -> dict[str, Any]:
    """What the figures were measured on, and how busy it was (``uptime``'s load averages)."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model or platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": _load(load_at_start),
        "load_average_at_end": _load(os.getloadavg()),
    }


def _load(load: tuple[float, float, float] | None) -> list[float] | None:
    return None if load is None else [round(value, 2) for value in load]


@dataclass(frozen=True)
class CpuUsage:
    """CPU time over one whole run (seeding included): ours, and everyone else's.

    The machine's busy time comes from /proc/stat; ours is this process and its
    reaped children (the emulator, the containers, the bench processes: all
    stopped by the end of a run). A large ``other`` share means another
    program competed for the cores and the run's figure is disturbed.
    """

    wall_seconds: float
    own_seconds: float
    other_seconds: float

    def other_share(self, cpus: int) -> float:
        capacity = self.wall_seconds * max(cpus, 1)
        return self.other_seconds / capacity if capacity > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_wall_seconds": round(self.wall_seconds, 1),
            "own_cpu_seconds": round(self.own_seconds, 1),
            "other_cpu_seconds": round(self.other_seconds, 1),
        }


class CpuWatch:
    def __enter__(self) -> CpuWatch:
        self._wall = time.monotonic()
        self._busy = _machine_busy_seconds()
        self._own = _own_cpu_seconds()
        self.usage: CpuUsage | None = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        busy = _machine_busy_seconds()
        if busy is None or self._busy is None:
            return
        own = _own_cpu_seconds() - self._own
        self.usage = CpuUsage(
            wall_seconds=time.monotonic() - self._wall,
            own_seconds=own,
            other_seconds=max(0.0, busy - self._busy - own),
        )


def _machine_busy_seconds() -> float | None:
    """All CPUs' user, nice, system, irq and softirq time since boot (Linux)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
