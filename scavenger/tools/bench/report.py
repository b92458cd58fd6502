"""The bench's results: one mode's run, checked against the truth, and the report
of them all (medians, ratios, the JSON ``scavenger bench --json`` prints)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scavenger.tools.bench.options import BenchOptions
from scavenger.tools.bench.usage import CpuUsage

if TYPE_CHECKING:
    from scavenger.tools.bench.cpu import CpuResult


@dataclass(frozen=True)
class ModeRun:
    """One mode's run on one freshly seeded table, checked against the truth."""

    mode: str
    repeat: int
    items: int
    expired: int
    deleted: int
    wrongly_deleted: int
    missed: int
    seconds: float
    api_calls: Counter[str]
    detail: dict[str, Any] = field(default_factory=dict)
    usage: CpuUsage | None = None

    @property
    def ok(self) -> bool:
        return self.wrongly_deleted == 0 and self.missed == 0

    @property
    def void(self) -> bool:
        """It deleted a fresh item or left an expired one: its figures do not count."""
        return not self.ok

    @property
    def deletes_per_second(self) -> float:
        return self.deleted / self.seconds if self.seconds > 0 else 0.0

    @property
    def calls_per_deleted_item(self) -> float | None:
        return sum(self.api_calls.values()) / self.deleted if self.deleted else None

    def as_dict(self) -> dict[str, Any]:
        per_item = self.calls_per_deleted_item
        return {
            "repeat": self.repeat,
            "ok": self.ok,
            "void": not self.ok,
            "items": self.items,
            "expired": self.expired,
            "deleted": self.deleted,
            "kept": self.items - self.deleted,
            "wrongly_deleted": self.wrongly_deleted,
            "missed": self.missed,
            "seconds": round(self.seconds, 3),
            "deletes_per_second": round(self.deletes_per_second, 1),
            "api_calls": dict(sorted(self.api_calls.items())),
            "calls_per_deleted_item": None if per_item is None else round(per_item, 4),
            **self.detail,
            **(self.usage.as_dict() if self.usage else {}),
        }


@dataclass
class BenchReport:
    options: BenchOptions
    runs: list[ModeRun]
    cpu: CpuResult | None
    machine: dict[str, Any]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)

    @property
    def void(self) -> list[str]:
        return [f"{run.mode} repeat {run.repeat + 1}" for run in self.runs if run.void]

    def runs_of(self, mode: str) -> list[ModeRun]:
        return [run for run in self.runs if run.mode == mode]

    def median(self, mode: str) -> float | None:
        """The mode's median deletes per second; None when it did not run or is void."""
        runs = self.runs_of(mode)
        if not runs or not all(run.ok for run in runs):
            return None
        return statistics.median(run.deletes_per_second for run in runs)

    def ratio(self, mode: str, other: str) -> float | None:
        numerator, denominator = self.median(mode), self.median(other)
        if numerator is None or not denominator:
            return None
        return numerator / denominator

    @property
    def calls_per_deleted_item(self) -> float | None:
        """The fleet's worker API calls per deleted item (median over its runs)."""
        runs = self.runs_of("fleet")
        values = [run.calls_per_deleted_item for run in runs]
        if not runs or not all(run.ok for run in runs) or None in values:
            return None
        return statistics.median(value for value in values if value is not None)

    @property
    def fleet_delete(self) -> str | None:
        """How the fleet's workers deleted, read from the calls they made."""
        calls: Counter[str] = Counter()
        for run in self.runs_of("fleet"):
            calls.update(run.api_calls)
        if not calls:
            return None
        if calls["BatchExecuteStatement"] and calls["DeleteItem"]:
            return "batch and item"
        return "batch" if calls["BatchExecuteStatement"] else "item"

    def as_dict(self) -> dict[str, Any]:
        options = self.options
        return {
            "ok": self.ok,
            "void": self.void,
            **copied(options, ("dynamodb", "items", "workers", "repeats", "seed")),
            "raw_deletes_per_second": _rounded(self.median("raw"), 1),
            "raw_item_deletes_per_second": _rounded(self.median("raw_item"), 1),
            "fleet_deletes_per_second": _rounded(self.median("fleet"), 1),
            "baseline_deletes_per_second": _rounded(self.median("baseline"), 1),
            "fleet_vs_raw": _rounded(self.ratio("fleet", "raw"), 3),
            "fleet_vs_raw_item": _rounded(self.ratio("fleet", "raw_item"), 3),
            "fleet_vs_baseline": _rounded(self.ratio("fleet", "baseline"), 3),
            "calls_per_deleted_item": _rounded(self.calls_per_deleted_item, 4),
            "worker_cpu_vs_bare_item": _rounded(self.cpu.ratio, 3) if self.cpu else None,
            # The same figure under its earlier name.
            "worker_vs_bare_cpu": _rounded(self.cpu.ratio, 3) if self.cpu else None,
            "settings": self.settings(),
            "modes": {
                mode: {
                    "deletes_per_second": _rounded(self.median(mode), 1),
                    "ok": all(run.ok for run in self.runs_of(mode)),
                    "runs": [run.as_dict() for run in self.runs_of(mode)],
                }
                for mode in options.modes
            },
            "cpu": self.cpu.to_json() if self.cpu else None,
            "machine": self.machine,
            "seconds": round(self.seconds, 1),
        }

    def settings(self) -> dict[str, Any]:
        """How each mode ran: ``<mode>_<setting>``, the modes in their order."""
        options = self.options
        workers = options.workers
        modes: dict[str, dict[str, Any]] = {
            "raw": {"segments": workers, "processes": workers, "delete": options.raw_delete_mode},
            "raw_item": {"delete": "item"},
            "fleet": {
                "delete": self.fleet_delete,
                "segments": options.fleet_segments,
                "workers": workers,
                "batch_size": options.batch_size,
                "timeout_seconds": options.timeout_seconds,
                "write_budget": None,  # as raw: the bench measures how fast it can go
            },
            "baseline": {
                "segments": workers,
                "reader_threads": workers,
                "deleter_threads": options.baseline_deleters,
                "queue_size": options.page_size,
            },
        }
        settings: dict[str, Any] = {"page_size": options.page_size}
        for mode, values in modes.items():
            settings.update({f"{mode}_{name}": value for name, value in values.items()})
        return settings


def copied(source: object, names: tuple[str, ...]) -> dict[str, Any]:
    """``source``'s attributes of these names, to pass on under the same names."""
    return {name: getattr(source, name) for name in names}


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
