"""Write units by table and by index: parsing ReturnConsumedCapacity INDEXES answers,
the meter's fallback where an engine reports none, Counts' addition and its round trip
through the ledger's segment and run items."""

from __future__ import annotations

from typing import Any

import pytest

from scavenger.cost import write_units_text
from scavenger.ledger import Ledger
from scavenger.pacing import Pacing, WritePacer
from scavenger.records import INDEX_UNITS_PREFIX, Counts, RunRecord
from scavenger.sweep import Pacer
from scavenger.table import Meter, WriteUnits, write_units

# The answers DynamoDB Local gave (measured) for a table with a GSI and an LSI.
DELETE_ITEM_ANSWER = {
    "ConsumedCapacity": {
        "TableName": "Probe",
        "CapacityUnits": 3.0,
        "Table": {"CapacityUnits": 1.0},
        "LocalSecondaryIndexes": {"ByL": {"CapacityUnits": 1.0}},
        "GlobalSecondaryIndexes": {"ByG": {"CapacityUnits": 1.0}},
    }
}


def test_a_delete_item_answer_gives_the_whole_and_each_index():
    assert write_units(DELETE_ITEM_ANSWER) == WriteUnits(3.0, {"ByL": 1.0, "ByG": 1.0})


def test_a_batch_answer_is_a_list_summed_per_index():
    answer = {
        "ConsumedCapacity": [
            {
                "TableName": "T",
                "CapacityUnits": 6.0,
                "Table": {"CapacityUnits": 2.0},
                "GlobalSecondaryIndexes": {"G": {"CapacityUnits": 4.0}},
            },
            {"TableName": "T", "Table": {"CapacityUnits": 1.0}, "GlobalSecondaryIndexes": {}},
        ]
    }

    assert write_units(answer) == WriteUnits(7.0, {"G": 4.0})


def test_an_entry_without_its_whole_is_the_table_plus_its_indexes():
    answer = {
        "ConsumedCapacity": {
            "Table": {"CapacityUnits": 1.0},
            "LocalSecondaryIndexes": {"L": {"CapacityUnits": 2.0}},
        }
    }

    assert write_units(answer) == WriteUnits(3.0, {"L": 2.0})


@pytest.mark.parametrize("answer", [{}, {"ConsumedCapacity": []}, {"ConsumedCapacity": None}])
def test_no_consumed_capacity_is_none(answer: dict[str, Any]):
    assert write_units(answer) is None


def test_the_meter_counts_one_unit_per_deleted_item_where_none_is_reported():
    meter = Meter()
    meter.count_writes(write_units(DELETE_ITEM_ANSWER), 1)
    before = meter.snapshot()

    meter.count_writes(None, 5)  # BatchExecuteStatement on DynamoDB Local
    meter.count_writes(write_units(DELETE_ITEM_ANSWER), 1)

    assert (meter.write_units, meter.write_units_by_index) == (11.0, {"ByL": 2.0, "ByG": 2.0})
    spent = meter.since(before)
    assert (spent.write_units, spent.write_units_by_index) == (8.0, {"ByL": 1.0, "ByG": 1.0})
    assert before.write_units_by_index == {"ByL": 1.0, "ByG": 1.0}  # a copy, not a view


def test_the_write_budget_is_spent_by_table_and_index_units_together():
    meter = Meter()
    budget = WritePacer(share=10.0, clock=lambda: 0.0)
    pacing = Pacing(Pacer(0), budget, meter)

    assert pacing.delay() == 0.0
    meter.count_writes(write_units(DELETE_ITEM_ANSWER), 1)  # 1 table + 2 index units
    pacing.settle()

    assert budget.tokens == -3.0
    assert pacing.delay() == pytest.approx(0.3)  # 3 units at 10 units/s


def test_counts_add_their_indexes_and_stay_frozen():
    first = Counts(deleted=2, write_units=6.0, write_units_by_index={"G": 2.0, "L": 2.0})
    second = Counts(deleted=1, write_units=2.0, write_units_by_index={"G": 1.0})

    total = first + second

    assert total == Counts(deleted=3, write_units=8.0, write_units_by_index={"G": 3.0, "L": 2.0})
    assert total.table_write_units == 3.0
    assert first.write_units_by_index == {"G": 2.0, "L": 2.0}  # the operands unchanged
    assert sum([first, second], Counts()) == total
    with pytest.raises(AttributeError):
        total.write_units = 0.0  # type: ignore[misc]


def test_as_dict_stays_scalar_and_to_json_adds_the_table_and_indexes():
    counts = Counts(write_units=5.0, write_units_by_index={"G": 2.0})

    assert all(isinstance(value, int | float) for value in counts.as_dict().values())
    assert counts.to_json() == counts.as_dict() | {
        "table_write_units": 3.0,
        "write_units_by_index": {"G": 2.0},
    }
    assert write_units_text(counts) == "5 (table 3, index G 2)"
    assert write_units_text(Counts(write_units=4.0)) == "4 (table 4)"


class RecordingClient:
    """Answers the ledger's UpdateItem and TransactWriteItems, keeping what they asked."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.updates.append(request)
        return {}

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.updates.extend(item["Update"] for item in TransactItems)
        return {}


def applied_adds(request: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The attributes an UpdateItem's ADD clause adds to, with their values, as
    DynamoDB would store them on a new item."""
    clause = request["UpdateExpression"].split(" ADD ", 1)[1]
    names = request.get("ExpressionAttributeNames", {})
    added: dict[str, dict[str, str]] = {}
    for term in clause.split(", "):
        attribute, value = term.split(" ")
        added[names.get(attribute, attribute)] = request["ExpressionAttributeValues"][value]
    return added


@pytest.mark.parametrize("done", [False, True])
def test_a_checkpoint_adds_each_index_to_its_own_top_level_attribute(done: bool):
    client = RecordingClient()
    counts = Counts(
        deleted=2, write_units=6.0, write_units_by_index={"By.Status-1": 2.0, "ByOwner": 2.0}
    )

    assert Ledger(client, "ledger").checkpoint(
        "run", 3, hop=0, checkpoints=0, cursor=None, counts=counts, done=done
    )

    segment_update = client.updates[0]
    added = applied_adds(segment_update)
    assert added[f"{INDEX_UNITS_PREFIX}By.Status-1"] == {"N": "2.0"}
    assert added[f"{INDEX_UNITS_PREFIX}ByOwner"] == {"N": "2.0"}
    assert added["write_units"] == {"N": "6.0"}
    assert "By.Status-1" not in segment_update["UpdateExpression"]  # only by placeholder
    assert Counts.from_item(added) == counts


def test_run_totals_keep_each_index_through_the_run_item():
    totals = Counts(deleted=4, write_units=12.0, write_units_by_index={"G": 4.0, "L": 4.0})
    item = {
        "run_id": {"S": "r"},
        "sweep": {"S": "s"},
        "table": {"S": "t"},
        "total_segments": {"N": "2"},
        "cutoff": {"S": "2026-01-01T00:00:00Z"},
        "dry_run": {"BOOL": False},
        "created_at": {"S": "2026-01-03T00:00:00Z"},
        "status": {"S": "done"},
        "totals": {"M": {name: {"N": str(v)} for name, v in totals.item_values().items()}},
    }

    run = RunRecord.from_item(item)

    assert run.totals == totals
    assert run.to_json()["totals"]["write_units_by_index"] == {"G": 4.0, "L": 4.0}
