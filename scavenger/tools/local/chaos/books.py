"""The fault journal and the books: what was injected, and which deletes the ledger
cannot have counted.

Containers and the fleet append one JSON line per event to one file. Lines of kind
``ledger.*`` are bookkeeping for the check, not faults: deletes that landed,
checkpoints sent and landed (counting the deletes before them), records that ended
(their deletes since the last checkpoint are never counted), and deletes whose
response was lost (the retry found the item gone and counted it as skipped).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Key = tuple[int, str]  # (WorkerId, StartTime) of the demo table

BOOKKEEPING = "ledger."
DELETED = "ledger.deleted"
CHECKPOINT_SENT = "ledger.checkpoint_sent"
CHECKPOINTED = "ledger.checkpointed"
SETTLED = "ledger.settled"
UNCOUNTED = "ledger.uncounted"
UNSETTLED_CAUSE = "container died unsettled (killed at its deadline)"


class FaultJournal:
    """Every injected fault as one JSON line, from the fleet and from every container.

    Each line is one ``write`` on a file opened with O_APPEND, so lines from
    processes and threads never interleave, and a container's line is on disk
    before it kills itself.
    """

    def __init__(self, path: Path):
        self.path = path

    def record(self, kind: str, **detail: Any) -> None:
        line = json.dumps({"kind": kind, **detail}, separators=(",", ":")) + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode())
        finally:
            os.close(descriptor)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def faults(self) -> Counter[str]:
        return Counter(e["kind"] for e in self.entries() if not e["kind"].startswith(BOOKKEEPING))

    def books(self) -> Books:
        """Replays each container's deletes and checkpoints in order (a container writes
        its lines one at a time) into the deletes the ledger never counted."""
        books = Books()
        pending: dict[int, list[Key]] = {}
        sent: set[int] = set()  # containers whose last line is a checkpoint being sent
        for entry in self.entries():
            _replay(entry, books, pending, sent)
        for container, keys in pending.items():
            if container in sent:
                books.in_flight.append(set(keys))
            else:
                books.uncounted |= dict.fromkeys(keys, UNSETTLED_CAUSE)
        return books


def _replay(
    entry: dict[str, Any], books: Books, pending: dict[int, list[Key]], sent: set[int]
) -> None:
    kind, container = entry["kind"], entry.get("container", -1)
    if kind != CHECKPOINT_SENT:
        sent.discard(container)
    if kind == DELETED:
        pending.setdefault(container, []).append(key_of(entry["key"]))
    elif kind == CHECKPOINT_SENT:
        sent.add(container)
    elif kind == CHECKPOINTED:
        pending.pop(container, None)
    elif kind == SETTLED:
        books.uncounted |= dict.fromkeys(pending.pop(container, []), entry["cause"])
    elif kind == UNCOUNTED:
        books.uncounted[key_of(entry["key"])] = entry["cause"]


@dataclass
class Books:
    """Deletes the ledger never counted (and why), and those of containers that died
    while the checkpoint carrying them was in flight: applied or not, as a whole."""

    uncounted: dict[Key, str] = field(default_factory=dict)
    in_flight: list[set[Key]] = field(default_factory=list)

    def gap(self, gone: set[Key], ledger_deleted: int) -> int:
        """0 when the ledger's total is the items gone less those never counted, up to
        whole in-flight checkpoints; otherwise how far off it is."""
        certain = set(self.uncounted)
        off = len(gone) - len(certain & gone) - ledger_deleted + len(certain - gone)
        possible = {0}
        for keys in self.in_flight:
            possible |= {total + len(keys & gone) for total in possible}
        return 0 if off in possible else off


def key_of(raw: list[Any]) -> Key:
    return (int(raw[0]), str(raw[1]))
