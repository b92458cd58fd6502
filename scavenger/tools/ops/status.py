"""What `scavenger status` shows: recent runs per sweep, or one run's segments.

Everything comes from the ledger (the source of truth), plus a look at the DLQ
to mark the segments whose message sits there.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from scavenger.cost import Prices, estimate
from scavenger.dlq import DeadLetter, DeadLetterQueue
from scavenger.errors import ScavengerError
from scavenger.ledger import Ledger
from scavenger.records import Counts, RunRecord, SegmentState
from scavenger.tools.ops.output import seconds_between

DLQ_PEEK_LIMIT = 1000


@dataclass(frozen=True)
class RunSummary:
    run: RunRecord
    counts: Counts
    failed: int
    last_progress: str | None
    seconds: float | None
    halted: int = 0

    def to_json(self) -> dict[str, Any]:
        run = self.run
        return {
            **run.identity(),
            "segments_total": run.total_segments,
            "segments_done": run.segments_done,
            "segments_failed": self.failed,
            "segments_halted": self.halted,
            "halt": asdict(run.halt) if run.halt else None,
            "deleted": self.counts.deleted,
            "counts": self.counts.to_json(),
            "cost": estimate(self.counts, prices=Prices.from_env()).to_json(),
            "seconds": self.seconds,
            "last_progress": self.last_progress,
        }


def summarize(
    ledger: Ledger,
    run: RunRecord,
    segments: list[SegmentState] | None = None,
    now: datetime | None = None,
) -> RunSummary:
    """A run's counters: its totals once done, else summed from its segments now."""
    if run.status == "done" and run.totals is not None and segments is None:
        return RunSummary(
            run=run,
            counts=run.totals,
            failed=0,
            last_progress=run.finished_at,
            seconds=seconds_between(run.created_at, run.finished_at),
        )
    if segments is None:
        segments = ledger.list_segments(run.run_id)
    updates = [state.updated_at for state in segments if state.updated_at]
    return RunSummary(
        run=run,
        counts=run.totals
        if run.totals is not None
        else sum((state.counts for state in segments), Counts()),
        failed=sum(1 for state in segments if state.status == "failed"),
        halted=sum(1 for state in segments if state.status == "halted"),
        last_progress=run.finished_at or (max(updates) if updates else None),
        seconds=seconds_between(run.created_at, run.finished_at, now),
    )


def recent_runs(
    ledger: Ledger, *, per_sweep: int, sweep: str | None = None
) -> dict[str, list[RunSummary]]:
    """The newest ``per_sweep`` runs of each sweep (or of ``sweep``), newest first."""
    by_sweep: dict[str, list[RunRecord]] = defaultdict(list)
    for run in ledger.list_runs():
        if sweep is not None and run.sweep != sweep:
            continue
        if len(by_sweep[run.sweep]) < per_sweep:
            by_sweep[run.sweep].append(run)
    return {
        name: [summarize(ledger, run) for run in runs] for name, runs in sorted(by_sweep.items())
    }


@dataclass(frozen=True)
class SegmentRow:
    state: SegmentState
    dlq_hops: tuple[int, ...] = ()
    requeue_unconfirmed: bool = False

    @property
    def in_dlq(self) -> bool:
        return bool(self.dlq_hops)

    def to_json(self) -> dict[str, Any]:
        state = self.state
        return {
            "segment": state.segment,
            "status": state.status,
            "hop": state.hop,
            **state.counts.to_json(),
            "checkpoints": state.checkpoints,
            "last_error": state.last_error,
            "updated_at": state.updated_at,
            "in_dlq": self.in_dlq,
            "dlq_hops": list(self.dlq_hops),
            "dlq_stale": self.in_dlq and state.drops(max(self.dlq_hops)),
            "requeue_unconfirmed": self.requeue_unconfirmed,
        }


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    segments: list[SegmentRow]
    dlq_checked: bool
    dlq_note: str = ""
    other_dlq_messages: int = 0
    invalid_dlq_messages: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.summary.to_json(),
            "segments": [row.to_json() for row in self.segments],
            "dlq": {
                "checked": self.dlq_checked,
                "note": self.dlq_note,
                "segments": sum(1 for row in self.segments if row.in_dlq),
                "other_runs_messages": self.other_dlq_messages,
                "invalid_messages": self.invalid_dlq_messages,
            },
        }


def run_detail(
    ledger: Ledger, run_id: str, dlq: DeadLetterQueue | None, now: datetime | None = None
) -> RunDetail:
    run = ledger.get_run(run_id)
    if run is None:
        raise ScavengerError(
            f"run {run_id} is not in the ledger {ledger.table_name} "
            "(`scavenger status` lists the runs)"
        )
    segments = sorted(ledger.list_segments(run_id), key=lambda state: state.segment)
    intents = ledger.requeues.requeue_intents(run_id)
    letters, note = _dlq_letters(dlq)
    hops: dict[int, list[int]] = defaultdict(list)
    other = invalid = 0
    for letter in letters:
        if letter.segment is None:
            invalid += 1
        elif letter.segment.run_id != run_id:
            other += 1
        else:
            hops[letter.segment.segment].append(letter.segment.hop)
    rows = [
        SegmentRow(
            state=state,
            dlq_hops=tuple(sorted(hops.get(state.segment, []))),
            requeue_unconfirmed=(
                state.segment in intents
                and state.status == "pending"
                and intents[state.segment]["hop"] == state.hop
            ),
        )
        for state in segments
    ]
    return RunDetail(
        summary=summarize(ledger, run, segments, now),
        segments=rows,
        dlq_checked=dlq is not None,
        dlq_note=note,
        other_dlq_messages=other,
        invalid_dlq_messages=invalid,
    )


def _dlq_letters(dlq: DeadLetterQueue | None) -> tuple[list[DeadLetter], str]:
    if dlq is None:
        return [], "no DLQ found: segments in it are not marked"
    visible, in_flight = dlq.counts()
    if visible + in_flight == 0:
        return [], ""
    note = f"{in_flight} DLQ messages are being received by someone else" if in_flight else ""
    return dlq.peek(DLQ_PEEK_LIMIT), note
