"""`scavenger requeue`: send segments of a run again, from their checkpoint or the start.

Order, for a requeue that can be interrupted anywhere and lose nothing:

1. One ledger transaction moves the segment to hop + 1 (pending; from the start
   also resets the cursor and the item counters, and reopens a done run) and
   records the intent (nonce, hop) on the segment item. Any older message of the
   segment is stale from here on, so at most one generation works on it.
2. The message (hop + 1, the segment's own group, a deduplication id with the
   nonce, so it never collides with the original or a continuation) is sent.
3. The intent is cleared.

The ledger goes first because a worker drops a message for a segment that is
still done (and would resume from the old cursor on one sent before the cursor
reset). A crash after 1 leaves the intent behind: running the same command
again sees it and sends the same message (same hop, same deduplication id), so a
requeue is never lost and never doubled; a message sent twice is a duplicate the
ledger's hop check absorbs.

``--halted`` resumes a halted run (DESIGN.md, "Ledger table"): every halted
segment is moved as in 1, then the run is set running again (its error kept as
``last_halt``), then the messages are sent. Moving the segments first makes any
older message of theirs stale, so none of them is swept before its requeue;
running the run again before the sends means no requeued message finds it halted.
Interrupted anywhere, the same command finishes it: the moved segments are
unconfirmed requeues, resent as in 3.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from scavenger.dlq import DeadLetterQueue
from scavenger.errors import FatalError, RetryableError, ScavengerError
from scavenger.ledger import Ledger
from scavenger.message import SegmentMessage
from scavenger.queue import SegmentQueue
from scavenger.records import RunRecord, SegmentState
from scavenger.tools.ops.output import ago

IN_FLIGHT = frozenset({"pending", "running"})
DLQ_PEEK_LIMIT = 1000

Action = Literal["requeue", "resend"]


@dataclass(frozen=True)
class Decision:
    """What to do with one segment: a new requeue, or finishing an interrupted one."""

    state: SegmentState
    action: Action
    from_start: bool
    intent: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    segment: int
    hop: int
    from_start: bool
    finished_interrupted: bool = False
    sent: bool = False
    error: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # every field, in order: all are plain JSON values


@dataclass
class RequeueReport:
    run_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    reopened_run: bool = False
    resumed_run: bool = False

    @property
    def ok(self) -> bool:
        return all(outcome.sent for outcome in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "reopened_run": self.reopened_run,
            "resumed_run": self.resumed_run,
            "segments": [outcome.to_json() for outcome in self.outcomes],
        }


class Requeuer:
    def __init__(
        self,
        ledger: Ledger,
        queue: SegmentQueue,
        dlq: DeadLetterQueue | None,
        *,
        nonce: Callable[[], str] = lambda: secrets.token_hex(8),
        now: Callable[[], datetime] | None = None,
    ):
        self.ledger = ledger
        self.queue = queue
        self.dlq = dlq
        self.nonce = nonce
        self.now = now

    def decide(
        self, run_id: str, segments: Iterable[int], *, from_start: bool, force: bool
    ) -> tuple[RunRecord, list[Decision]]:
        """Check every segment before anything changes; a refusal is a ScavengerError."""
        run = self.ledger.get_run(run_id)
        if run is None:
            raise ScavengerError(
                f"run {run_id} is not in the ledger {self.ledger.table_name} "
                "(`scavenger status` lists the runs)"
            )
        wanted = sorted(set(segments))
        for segment in wanted:
            if not 0 <= segment < run.total_segments:
                raise ScavengerError(
                    f"segment {segment}: run {run_id} has segments 0..{run.total_segments - 1}"
                )
        states: list[SegmentState] = []
        for segment in wanted:
            state = self.ledger.get_segment(run_id, segment)
            if state is None:
                raise ScavengerError(f"segment {segment} of run {run_id} is not in the ledger")
            states.append(state)
        intents = self.ledger.requeues.requeue_intents(run_id)
        in_dlq = self._segments_in_dlq(run_id, states, intents, force)
        decisions: list[Decision] = []
        for state in states:
            intent = intents.get(state.segment)
            interrupted = (
                intent is not None and state.status == "pending" and intent["hop"] == state.hop
            )
            if interrupted and intent is not None and (intent["from_start"] or not from_start):
                decisions.append(Decision(state, "resend", intent["from_start"], intent))
                continue
            if state.status == "done" and not from_start:
                raise ScavengerError(
                    f"segment {state.segment} is done ({state.counts.deleted} deleted); "
                    "pass --from-start to sweep it again"
                )
            if state.status in IN_FLIGHT and not (force or interrupted or state.segment in in_dlq):
                raise ScavengerError(
                    f"segment {state.segment} is {state.status} at hop {state.hop} "
                    f"(updated {ago(state.updated_at, self.now() if self.now else None)}) "
                    "and its message may be in flight; pass --force to requeue it anyway"
                )
            decisions.append(Decision(state, "requeue", from_start))
        return run, decisions

    def decide_halted(self, run_id: str) -> tuple[RunRecord, list[Decision]]:
        """Every halted segment of the run, and every requeue of it cut short before
        its send; a refusal (unknown run, nothing halted) is a ScavengerError."""
        run = self.ledger.get_run(run_id)
        if run is None:
            raise ScavengerError(
                f"run {run_id} is not in the ledger {self.ledger.table_name} "
                "(`scavenger status` lists the runs)"
            )
        intents = self.ledger.requeues.requeue_intents(run_id)
        decisions: list[Decision] = []
        for state in sorted(self.ledger.list_segments(run_id), key=lambda s: s.segment):
            intent = intents.get(state.segment)
            if state.status == "halted":
                decisions.append(Decision(state, "requeue", False))
            elif intent is not None and state.status == "pending" and intent["hop"] == state.hop:
                decisions.append(Decision(state, "resend", intent["from_start"], intent))
        if not decisions and run.status != "halted":
            raise ScavengerError(f"run {run_id} is {run.status} and has no halted segment")
        return run, decisions

    def execute(self, run: RunRecord, decisions: list[Decision]) -> RequeueReport:
        """Move every segment in the ledger, run a halted run again, then send."""
        report = RequeueReport(run_id=run.run_id)
        moves = [(decision, self._move(decision)) for decision in decisions]
        if run.status == "halted":
            # The requeued messages must not find the run halted; the segments are
            # moved already, so no older message of theirs is swept in between.
            report.resumed_run = self.ledger.resume_run(run.run_id)
        for decision, move in moves:
            outcome = move if isinstance(move, Outcome) else self._send(run, decision, *move)
            if decision.action == "requeue" and decision.state.status == "done" and outcome.sent:
                report.reopened_run = report.reopened_run or run.status == "done"
            report.outcomes.append(outcome)
        return report

    def _move(self, decision: Decision) -> tuple[str, int] | Outcome:
        """The ledger step: (nonce, hop) of the message to send, or why not."""
        state = decision.state
        if decision.action == "resend" and decision.intent is not None:
            return decision.intent["nonce"], decision.intent["hop"]
        nonce, hop = self.nonce(), state.hop + 1
        moved = self.ledger.requeues.requeue_segment(
            state,
            new_hop=hop,
            nonce=nonce,
            from_start=decision.from_start,
            reopen_run=state.status == "done",
        )
        if not moved:
            return Outcome(
                state.segment,
                state.hop,
                decision.from_start,
                error="the segment changed while it was being requeued (a worker moved it); "
                "nothing was changed for it: check `scavenger status` and run again",
            )
        return nonce, hop

    def _send(self, run: RunRecord, decision: Decision, nonce: str, hop: int) -> Outcome:
        state = decision.state
        message = SegmentMessage(
            **run.message_fields(),
            segment=state.segment,
            cursor=None if decision.from_start else state.cursor,
            hop=hop,
        )
        finished = decision.action == "resend"
        try:
            self.queue.send(message, nonce=nonce)
        except (FatalError, RetryableError) as exc:
            return Outcome(
                state.segment,
                hop,
                decision.from_start,
                finished_interrupted=finished,
                error=f"recorded in the ledger but the message was not sent ({exc}); "
                "run the same command again to send it",
            )
        note = None
        try:
            self.ledger.requeues.confirm_requeue(run.run_id, state.segment, nonce)
        except (FatalError, RetryableError) as exc:
            note = f"sent; the ledger still notes it as unsent ({exc}): harmless"
        return Outcome(
            state.segment,
            hop,
            decision.from_start,
            finished_interrupted=finished,
            sent=True,
            note=note,
        )

    def _segments_in_dlq(
        self,
        run_id: str,
        states: list[SegmentState],
        intents: dict[int, dict[str, Any]],
        force: bool,
    ) -> set[int]:
        """Segments whose message is in the DLQ (so not in flight); looked up only
        when it decides something."""
        undecided = [
            state
            for state in states
            if state.status in IN_FLIGHT
            and not force
            and not (state.segment in intents and intents[state.segment]["hop"] == state.hop)
        ]
        if not undecided or self.dlq is None:
            return set()
        return {
            letter.segment.segment
            for letter in self.dlq.peek(DLQ_PEEK_LIMIT)
            if letter.segment is not None and letter.segment.run_id == run_id
        }
