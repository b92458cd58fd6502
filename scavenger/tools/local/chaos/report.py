"""What a chaos run did and what the check found, as a table row and as JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scavenger.tools.local.chaos.books import Key
from scavenger.tools.local.chaos.plan import ChaosPlan
from scavenger.tools.local.chaos.writer import WriterChange
from scavenger.tools.local.demo import delete_mode_for
from scavenger.tools.local.fleet import FleetStats


@dataclass
class ChaosReport:
    """What the chaos run did, and what the check found (every ``lost``/``wrong`` must be 0)."""

    seed: int
    run_id: str
    in_process: bool
    plan: ChaosPlan
    items: int
    expired: int
    deleted: int
    kept: int
    wrongly_deleted: list[Key]
    missed: list[Key]
    refreshed: int
    refreshed_too_late: int
    inserted_fresh: int
    inserted_expired: int
    inserted_expired_deleted: int
    gone_by_run: int
    ledger_deleted: int
    uncounted: Counter[str]
    ledger_gap: int
    segments: int
    segments_not_done: list[int]
    run_done: bool
    queue_left: int
    dlq_legit: int
    dlq_poison: int
    poison_sent: int
    recovery_rounds: int
    redriven: int
    faults: Counter[str]
    fleet: FleetStats
    recovery_invocations: int
    seconds: float
    writer: list[WriterChange] = field(default_factory=list)
    log_path: str | None = None
    backend: str = "moto"

    @property
    def lost(self) -> int:
        """Segments not done, messages left on the queue, legitimate messages left in the
        DLQ, and poison messages that did not end in the DLQ."""
        return (
            len(self.segments_not_done)
            + int(not self.run_done)
            + self.queue_left
            + self.dlq_legit
            + abs(self.poison_sent - self.dlq_poison)
        )

    @property
    def ok(self) -> bool:
        return not (self.wrongly_deleted or self.missed or self.lost or self.ledger_gap)

    def as_dict(self) -> dict[str, Any]:
        return self._verdict() | self._table() | self._run() | self._detail()

    def _verdict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "chaos": True,
            "seed": self.seed,
            "dynamodb": self.backend,
            "delete_mode": delete_mode_for(self.backend),
            "rerun": f"scavenger demo --chaos --seed {self.seed} --items {self.items}",
            "run_id": self.run_id,
            "in_process": self.in_process,
        }

    def _table(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "expired": self.expired,
            "deleted": self.deleted,
            "kept": self.kept,
            "wrongly_deleted": len(self.wrongly_deleted),
            "missed": len(self.missed),
            "lost": self.lost,
            "ledger_gap": self.ledger_gap,
            "refreshed": self.refreshed,
            "refreshed_too_late": self.refreshed_too_late,
            "inserted_fresh": self.inserted_fresh,
            "inserted_expired": self.inserted_expired,
            "inserted_expired_deleted": self.inserted_expired_deleted,
            "gone_by_run": self.gone_by_run,
            "ledger_deleted": self.ledger_deleted,
            "uncounted_deletes": dict(sorted(self.uncounted.items())),
        }

    def _run(self) -> dict[str, Any]:
        return {
            "segments": self.segments,
            "segments_not_done": self.segments_not_done,
            "run_done": self.run_done,
            "queue_left": self.queue_left,
            "dlq": self.dlq_legit + self.dlq_poison,
            "dlq_legit": self.dlq_legit,
            "dlq_poison": self.dlq_poison,
            "poison_sent": self.poison_sent,
            "recovery_rounds": self.recovery_rounds,
            "redriven": self.redriven,
            "faults": dict(sorted(self.faults.items())),
            "faults_total": sum(self.faults.values()),
        }

    def _detail(self) -> dict[str, Any]:
        return {
            "invocations": self.fleet.invocations + self.recovery_invocations,
            "continuations": self.fleet.continuations,
            "cold_starts": self.fleet.cold_starts,
            "function_errors": self.fleet.function_errors,
            "timeouts": self.fleet.timeouts,
            "seconds": round(self.seconds, 3),
            "deleted_per_second": round(self.gone_by_run / self.seconds, 1) if self.seconds else 0,
            "api_calls": dict(sorted(self.fleet.api_calls.items())),
            "plan": self.plan.to_json(),
            "wrongly_deleted_keys": [list(key) for key in self.wrongly_deleted[:20]],
            "missed_keys": [list(key) for key in self.missed[:20]],
            "log_file": self.log_path,
        }

    def summary(self) -> str:
        """One line: the seed, the verdict and the faults injected per kind."""
        faults = ", ".join(f"{kind}={count}" for kind, count in sorted(self.faults.items()))
        return (
            f"seed {self.seed}: {'PASS' if self.ok else 'FAIL'} items={self.items} "
            f"deleted={self.deleted} wrongly_deleted={len(self.wrongly_deleted)} "
            f"missed={len(self.missed)} lost={self.lost} ledger_gap={self.ledger_gap} "
            f"redriven={self.redriven} rounds={self.recovery_rounds} | {faults}"
        )
