"""The ledger's side of an operator requeue (scavenger.tools.ops.requeue): move, confirm.

A requeue is written before its message is sent, with its intent kept on the segment
item until the send is confirmed, so one cut short anywhere is found and finished.
"""

from __future__ import annotations

from typing import Any

from scavenger.ledger_store import (
    RUN_PART,
    LedgerStore,
    cursor_text,
    now_iso,
    number,
    segment_part,
    string,
)
from scavenger.records import SEGMENT_PREFIX, SegmentState

# From the start, a segment's item counters keep only what was deleted.
RESCANNED = ("scanned", "expired", "skipped", "unparseable")


class RequeueLedger(LedgerStore):
    """Requeue intents on segment items, over the ledger's client."""

    def requeue_segment(
        self,
        state: SegmentState,
        *,
        new_hop: int,
        nonce: str,
        from_start: bool,
        reopen_run: bool,
    ) -> bool:
        """Operator requeue, written before its message is sent, as one transaction.

        The segment moves to ``new_hop`` (older messages become stale) and pending,
        with the intent kept in ``requeue`` until ``confirm_requeue``: a requeue cut
        short before its send is found and finished by running it again. From the
        start, the cursor goes back to the start and the item counters keep only
        what was deleted (deleted items never reappear in a rescan; everything else
        is counted again); effort counters (throttled, units, messages, time) stay.
        ``reopen_run`` takes a done segment out of the run's count of done segments
        (the segment's condition holds it done, so it was counted) and sets the run
        running again. False if the segment moved since ``state`` was read.
        """
        items = [self._move_segment(state, new_hop, nonce, from_start)]
        if reopen_run:
            items.append(self._reopen_run(state.run_id))
        return self._transact(items)

    def _move_segment(
        self, state: SegmentState, new_hop: int, nonce: str, from_start: bool
    ) -> dict[str, Any]:
        """The segment's half: to ``new_hop`` and pending, with the intent, if unmoved."""
        now = now_iso()
        intent = {
            "nonce": string(nonce),
            "hop": number(new_hop),
            "from_start": {"BOOL": from_start},
            "requested_at": string(now),
        }
        values: dict[str, Any] = {
            ":hop": number(state.hop),
            ":seen": number(state.checkpoints),
            ":was": string(state.status),
            ":next": number(new_hop),
            ":pending": string("pending"),
            ":now": string(now),
            ":intent": {"M": intent},
        }
        update = "SET #hop = :next, #status = :pending, #updated_at = :now, #requeue = :intent"
        names: dict[str, str] = {}
        if from_start:
            names = {f"#{name}": name for name in RESCANNED}
            update += (
                ", #cursor = :start, #scanned = :kept, #expired = :kept,"
                " #skipped = :zero, #unparseable = :zero"
            )
            kept = number(state.counts.deleted)
            values |= {":start": string(cursor_text(None)), ":kept": kept, ":zero": number(0)}
        condition = "#hop = :hop AND #checkpoints = :seen AND #status = :was"
        part = segment_part(state.segment)
        return {
            "Update": self._update_request(state.run_id, part, update, condition, values, names)
        }

    def _reopen_run(self, run_id: str) -> dict[str, Any]:
        """The run's half: running again, its done segment uncounted, its totals gone."""
        update = "SET #status = :running REMOVE totals, finished_at ADD segments_done :minus_one"
        values = {":running": string("running"), ":minus_one": number(-1)}
        condition = "attribute_exists(run_id)"
        return {"Update": self._update_request(run_id, RUN_PART, update, condition, values)}

    def requeue_intents(self, run_id: str) -> dict[int, dict[str, Any]]:
        """Requeues of ``run_id`` not yet confirmed sent: segment -> nonce, hop,
        from_start, requested_at."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "KeyConditionExpression": "run_id = :run AND begins_with(part, :seg)",
            "FilterExpression": "attribute_exists(#requeue)",
            "ProjectionExpression": "part, #requeue",
            "ExpressionAttributeNames": {"#requeue": "requeue"},
            "ExpressionAttributeValues": {":run": string(run_id), ":seg": string(SEGMENT_PREFIX)},
        }
        intents: dict[int, dict[str, Any]] = {}
        for page in self._pages("Query", request):
            for item in page.get("Items", []):
                intent = item["requeue"]["M"]
                intents[int(item["part"]["S"].removeprefix(SEGMENT_PREFIX))] = {
                    "nonce": intent["nonce"]["S"],
                    "hop": int(intent["hop"]["N"]),
                    "from_start": intent["from_start"]["BOOL"],
                    "requested_at": intent["requested_at"]["S"],
                }
        return intents

    def confirm_requeue(self, run_id: str, segment: int, nonce: str) -> bool:
        """The requeue's message is on the queue: drop its intent, if it is still this one."""
        return self._update_key(
            run_id,
            segment_part(segment),
            "REMOVE #requeue",
            "#requeue.#nonce = :nonce",
            {":nonce": string(nonce)},
        )
