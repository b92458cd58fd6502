"""One API call as the chaos hooks follow it, and what kind of call it is: a delete,
a checkpoint, a ledger read that names a segment, a batch of deletes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scavenger.tools.local.chaos.books import Key

BATCH = "BatchExecuteStatement"  # the batch delete path's one call
CALL = "scavenger.chaos"  # key of the call record in botocore's request context


@dataclass
class CallRecord:
    """One API call as the chaos hooks follow it across botocore's attempts."""

    operation: str
    params: dict[str, Any]
    landed: bool = False  # an attempt reached the service and succeeded
    # BatchExecuteStatement: the statements the service sees (failed ones taken out).
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    def deletes_from(self, table: str) -> bool:
        return self.operation == "DeleteItem" and self.params.get("TableName") == table

    def deleted_key(self) -> list[Any]:
        return list(item_key(self.params["Key"]))


def item_key(key: Mapping[str, Any]) -> Key:
    return (int(key["WorkerId"]["N"]), str(key["StartTime"]["S"]))


def batch_deletes(call: CallRecord, parsed: dict[str, Any]) -> list[list[Any]]:
    """The keys a batch's answer says it deleted (old item back, no error)."""
    statements = call.params.get("Statements", [])
    sent = call.sent or list(range(len(statements)))
    keys = []
    for index, answer in zip(sent, parsed.get("Responses", []), strict=False):
        if "Item" in answer and "Error" not in answer:
            first, second = statements[index]["Parameters"][:2]
            keys.append(list(item_key({"WorkerId": first, "StartTime": second})))
    return keys


def is_checkpoint(call: CallRecord, ledger_table: str) -> bool:
    """A ledger write that carries a page's counters (Ledger.checkpoint): an UpdateItem,
    or for a segment's last page a transaction whose first write it is."""
    update = call.params
    if call.operation == "TransactWriteItems":
        update = (call.params.get("TransactItems") or [{}])[0].get("Update", {})
    elif call.operation != "UpdateItem":
        return False
    return update.get("TableName") == ledger_table and ":deleted" in update.get(
        "ExpressionAttributeValues", {}
    )


def segment_read(call: CallRecord, ledger_table: str) -> str:
    """The SEG# part a ledger read names: a record's claim (BatchGetItem of the
    segment and its run) or a GetItem of the segment; "" for any other call."""
    if call.operation == "GetItem" and call.params.get("TableName") == ledger_table:
        keys = [call.params.get("Key", {})]
    elif call.operation == "BatchGetItem":
        keys = call.params.get("RequestItems", {}).get(ledger_table, {}).get("Keys", [])
    else:
        return ""
    parts = (str(key.get("part", {}).get("S", "")) for key in keys)
    return next((part for part in parts if part.startswith("SEG#")), "")
