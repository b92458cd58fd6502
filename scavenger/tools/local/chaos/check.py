"""The check: the invariants of a chaos run, from one snapshot of its end state.

- must stay: seeded items never expired, refreshed items (fresh from their
  refresh on), inserted fresh items; any of them gone is wrongly deleted;
- must go: seeded expired items never refreshed (expired for the whole run);
  any of them left is missed. Inserted expired items may go either way;
- ledger: the run's ``deleted`` total plus the deletes the ledger cannot have
  counted (journaled by the containers: done before a kill or a failed record
  and never checkpointed, or done by an attempt whose response was lost, so
  the retry counted the item as skipped) equals the items gone from the table;
- nothing lost: every segment done, the queue empty, no segment message in the
  DLQ, and every poison message there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from scavenger.records import RunRecord, SegmentState
from scavenger.tools.local.chaos.books import Books, Key
from scavenger.tools.local.chaos.options import ChaosOptions
from scavenger.tools.local.chaos.plan import ChaosPlan
from scavenger.tools.local.chaos.queues import Recovery
from scavenger.tools.local.chaos.report import ChaosReport
from scavenger.tools.local.chaos.writer import WriterChange
from scavenger.tools.local.demo import SeededItem
from scavenger.tools.local.fleet import FleetStats


@dataclass(frozen=True)
class Snapshot:
    """Everything the check reads: the run's inputs, and its end state, taken once."""

    options: ChaosOptions
    plan: ChaosPlan
    run_id: str
    total_segments: int
    truth: list[SeededItem]
    cutoff: datetime
    poison: list[str]
    remaining: set[Key]
    writer: list[WriterChange]
    books: Books
    faults: Counter[str]
    run: RunRecord | None
    segments: list[SegmentState]
    queue_left: int
    dlq_segment_messages: int
    dlq_other_bodies: list[str]
    stats: FleetStats
    recovery: Recovery
    seconds: float

    def written(self, action: str) -> set[Key]:
        return {change.key for change in self.writer if change.action == action}

    def ledger_deleted(self) -> int:
        if self.run is not None and self.run.totals is not None:
            return self.run.totals.deleted
        return sum(segment.counts.deleted for segment in self.segments)

    def segments_not_done(self) -> list[int]:
        listed = sorted(s.segment for s in self.segments if s.status != "done")
        return listed + list(range(len(self.segments), self.total_segments))


def check(snapshot: Snapshot) -> ChaosReport:
    """The report of one run, its verdict included (see the module's docstring)."""
    s = snapshot
    seeded = {item.key for item in s.truth}
    expired = {item.key for item in s.truth if item.expired(s.cutoff)}
    refreshed = s.written("refresh")
    inserted_fresh, inserted_expired = s.written("insert_fresh"), s.written("insert_expired")
    must_stay = (seeded - expired) | refreshed | inserted_fresh
    must_go = expired - refreshed
    gone = (seeded | inserted_fresh | inserted_expired) - s.remaining
    ledger_deleted = s.ledger_deleted()
    return ChaosReport(
        backend=s.options.dynamodb,
        seed=s.options.seed,
        run_id=s.run_id,
        in_process=s.options.in_process,
        plan=s.plan,
        items=len(seeded),
        expired=len(expired),
        deleted=len(must_go & gone),
        kept=len(seeded & s.remaining),
        wrongly_deleted=sorted(must_stay - s.remaining),
        missed=sorted(must_go & s.remaining),
        refreshed=len(refreshed),
        refreshed_too_late=len(s.written("refresh_too_late")),
        inserted_fresh=len(inserted_fresh),
        inserted_expired=len(inserted_expired),
        inserted_expired_deleted=len(inserted_expired & gone),
        gone_by_run=len(gone),
        ledger_deleted=ledger_deleted,
        uncounted=Counter(s.books.uncounted.values()),
        ledger_gap=s.books.gap(gone, ledger_deleted),
        segments=s.total_segments,
        segments_not_done=s.segments_not_done(),
        run_done=s.run is not None and s.run.status == "done",
        queue_left=s.queue_left,
        dlq_legit=s.dlq_segment_messages,
        dlq_poison=sum(1 for body in s.dlq_other_bodies if body in s.poison),
        poison_sent=len(s.poison),
        recovery_rounds=s.recovery.rounds,
        redriven=s.recovery.redriven,
        faults=s.faults,
        fleet=s.stats,
        recovery_invocations=s.recovery.invocations,
        seconds=s.seconds,
        writer=list(s.writer),
    )
