"""The batch delete path on AWS's own DynamoDB Local: a statement pinned to the key, the
scanned age and every attribute ``where`` reads deletes only when the item path's
ConditionExpression would, each statement's verdict is counted once, and a failed
statement is sent again on its own.

moto cannot run these (its PartiQL DELETE ignores predicates): they need Java 17+ and
DynamoDB Local (``make setup``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.functions import BATCH_DELETE_ACTIONS, SWEPT_TABLE_ACTIONS
from scavenger import aws
from scavenger.config import parse_sweeps
from scavenger.expiry import AGE_VALUE, Expressions
from scavenger.ledger import Ledger
from scavenger.records import RunRecord
from scavenger.retry import NoDeadline, RetryPolicy
from scavenger.table import Deleted, SweptTable
from tests.conftest import LEDGER, Stack, drain, moto_stack, roomy_context
from tests.dataset import create_hash_table, key_id, remaining_keys
from tests.faults import StatementFaults, on_call
from tests.infra.calls import dynamodb_actions
from tests.properties import fixture_examples
from tests.runs import seed_sweep, start_run
from tests.sweeps import sweep_spec

pytestmark = pytest.mark.integration

TABLE = "Swept"
SHAPE = "composite_number_string"
SWEEP = sweep_spec(table=TABLE, segments=1, completed=True, delete_mode="batch")
EXPIRED_AGE = {"S": "2001-01-01T00:00:00Z"}
OLDER_AGE = {"S": "2000-06-01T00:00:00+02:00"}
OTHER_MATCH = {'{"N": "1"}': {"S": "1"}, '{"S": "1"}': {"N": "1"}}

# -- the pins decide as the item path's condition does -------------------------------------

# Expressions of every shape ``where`` may take: IN, functions, nested paths, NOT, BETWEEN,
# bare attribute names, a list index.
WHERES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("#c IN (:n1, :s1)", {"#c": "Completed"}, {":n1": 1, ":s1": "1"}),
    ("attribute_not_exists(#d) OR #d.#e = :one", {"#d": "Doc", "#e": "e"}, {":one": 1}),
    ("size(tags) > :two AND NOT contains(tags, :x)", {}, {":two": 2, ":x": "x"}),
    ("begins_with(kind, :p) OR #c BETWEEN :lo AND :hi", {"#c": "Completed"},
     {":p": "wo", ":lo": 1, ":hi": 3}),
    ("attribute_type(#c, :t) AND tags[0] <> :x", {"#c": "Completed"}, {":t": "N", ":x": "x"}),
]  # fmt: skip

MISSING = None
attribute_values = {
    "Completed": st.one_of(
        st.none(), st.integers(0, 3).map(lambda n: {"N": str(n)}), st.just({"S": "1"})
    ),
    "Doc": st.one_of(
        st.none(),
        st.sampled_from([{"N": "1"}, {"N": "0"}, {"S": "1"}]).map(lambda e: {"M": {"e": e}}),
        st.just({"M": {}}),
    ),
    "tags": st.one_of(
        st.none(),
        st.lists(st.sampled_from(["x", "y", "z"]), max_size=4).map(
            lambda tags: {"L": [{"S": tag} for tag in tags]}
        ),
        st.sets(st.sampled_from(["x", "y", "z"]), min_size=1).map(
            lambda tags: {"SS": sorted(tags)}
        ),
    ),
    "kind": st.one_of(st.none(), st.sampled_from(["worker", "wo", "x"]).map(lambda s: {"S": s})),
}
item_strategy = st.fixed_dictionaries(attribute_values)
# A rewrite: per attribute, keep it, write another value, or remove it; the age too.
rewrite_strategy = st.fixed_dictionaries(
    {name: st.one_of(st.just("keep"), values) for name, values in attribute_values.items()}
    | {"ts": st.sampled_from(["keep", "older", "fresh"])}
)
keys = itertools.count(1)


def as_item(key: int, attributes: dict[str, Any]) -> dict[str, Any]:
    item = {"id": {"N": str(key)}, "ts": EXPIRED_AGE}
    item |= {name: value for name, value in attributes.items() if value is not None}
    return item


def rewritten(item: dict[str, Any], rewrite: dict[str, Any]) -> dict[str, Any]:
    changed = dict(item)
    for name, change in rewrite.items():
        if change == "keep":
            continue
        if name == "ts":
            changed["ts"] = OLDER_AGE if change == "older" else {"S": "2999-01-01T00:00:00Z"}
        elif change is None:
            changed.pop(name, None)
        else:
            changed[name] = change
    return changed


@pytest.fixture
def pins_table(dynamodb_local: str) -> Iterator[Any]:
    client = aws.client("dynamodb")
    create_hash_table(client, "Pins", key_type="N")
    yield client


@fixture_examples(120)
@given(
    where=st.sampled_from(WHERES),
    attributes=item_strategy,
    rewrite=rewrite_strategy,
)
def test_a_pinned_statement_deletes_only_where_the_item_paths_condition_holds(
    pins_table, where, attributes, rewrite
):
    """For any item that matched ``where`` when scanned and any rewrite of it before the
    delete, the batch statement deletes only if the item path's ConditionExpression
    (age pinned, ``where`` evaluated by DynamoDB) holds on the rewritten item; and when
    the rewrite left the age and every pinned attribute as scanned, it deletes."""
    client = pins_table
    condition, names, values = where
    (sweep,) = parse_sweeps(
        [{**SWEEP, "table": "Pins", "where": condition, "names": names, "values": values}]
    )
    expressions = Expressions.build(sweep, ("id",))
    assert expressions.pinned is not None
    table = SweptTable(client, "Pins", ("id",), expressions, RetryPolicy(NoDeadline()))
    batch_key, item_key = next(keys), -next(keys)
    client.put_item(TableName="Pins", Item=as_item(batch_key, attributes))
    scanned = [
        item
        for item in table.scan_page(0, 1, None, 1000).items
        if item["id"] == {"N": str(batch_key)}
    ]
    client.delete_item(TableName="Pins", Key={"id": {"N": str(batch_key)}})
    if not scanned:  # `where` did not hold: the sweep never tries it
        return
    (seen,) = scanned
    now_item = rewritten(as_item(batch_key, attributes), rewrite)
    twin = {**now_item, "id": {"N": str(item_key)}}
    client.put_item(TableName="Pins", Item=now_item)
    client.put_item(TableName="Pins", Item=twin)

    verdicts: list[Deleted] = []
    table.delete_batch([seen], lambda item, verdict, current: verdicts.append(verdict))
    try:
        client.delete_item(
            TableName="Pins",
            Key={"id": twin["id"]},
            ConditionExpression=expressions.delete_condition,
            ExpressionAttributeNames=expressions.delete_names,
            ExpressionAttributeValues={AGE_VALUE: seen["ts"], **expressions.user_values},
        )
        item_path_deletes = True
    except client.exceptions.ConditionalCheckFailedException:
        item_path_deletes = False

    batch_deletes = verdicts == [Deleted.DELETED]
    assert not batch_deletes or item_path_deletes, (condition, seen, now_item)
    pins_kept = all(seen.get(name) == now_item.get(name) for name in expressions.pinned)
    if pins_kept and now_item["ts"] == seen["ts"]:
        assert batch_deletes and item_path_deletes, (condition, seen, now_item)
    client.delete_item(TableName="Pins", Key={"id": now_item["id"]})
    client.delete_item(TableName="Pins", Key={"id": twin["id"]})


# -- the worker's batch path ------------------------------------------------------------------


@pytest.fixture
def stack(dynamodb_local: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Stack]:
    """DynamoDB on DynamoDB Local, SQS on moto's in-process mock."""
    monkeypatch.chdir(tmp_path)
    with moto_stack(monkeypatch) as resources:
        yield resources


def sweep_table(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, count: int, page_size: int = 100, **sweep: Any
) -> tuple[Any, str]:
    truth = seed_sweep(stack, monkeypatch, {**SWEEP, **sweep}, count=count, page_size=page_size)
    return truth, start_run()


def finished(stack: Stack, run_id: str) -> RunRecord:
    run = Ledger(stack.dynamodb, LEDGER).get_run(run_id)
    assert run is not None and run.status == "done" and run.totals is not None
    return run


def record_batches(client: Any) -> list[list[dict[str, Any]]]:
    """The statements of every BatchExecuteStatement, as the service receives them."""
    sent: list[list[dict[str, Any]]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        sent.append(json.loads(params["body"])["Statements"])

    client.meta.events.register("before-call.dynamodb.BatchExecuteStatement", remember)
    return sent


def statement_key(statement: dict[str, Any]) -> dict[str, Any]:
    first, second = statement["Parameters"][:2]
    return {"WorkerId": first, "StartTime": second}


def test_the_batch_path_deletes_the_expired_items_in_calls_of_25(stack, monkeypatch):
    truth, run_id = sweep_table(stack, monkeypatch, count=200, page_size=1000)  # one page
    client = aws.client("dynamodb")
    batches = record_batches(client)
    delete_items = []
    on_call(client, "DeleteItem", delete_items.append)

    drain(stack, context_factory=roomy_context)

    assert remaining_keys(stack.dynamodb, TABLE) == truth.kept
    totals = finished(stack, run_id).totals
    assert (totals.deleted, totals.skipped) == (len(truth.doomed), 0)
    assert totals.write_units == len(truth.doomed)  # DynamoDB Local reports no capacity
    assert delete_items == []
    assert [len(batch) for batch in batches[:-1]] == [25] * (len(batches) - 1)
    assert sum(len(batch) for batch in batches) == len(truth.doomed)
    statement = batches[0][0]["Statement"]
    assert statement.startswith(f'DELETE FROM "{TABLE}" WHERE "WorkerId" = ? AND "StartTime" = ?')
    assert '"ts" = ?' in statement and statement.endswith("RETURNING ALL OLD *")
    assert '"Completed" = ?' in statement


def test_a_failed_statement_is_sent_again_alone_and_counted_once(stack, monkeypatch):
    """Single statements throttled or failed (Responses[i].Error) are sent again without
    the rest of their batch, and every item is counted once."""
    truth, run_id = sweep_table(stack, monkeypatch, count=80)
    client = aws.client("dynamodb")
    faults = StatementFaults(client, rate=0.3, code="ProvisionedThroughputExceeded", seed=4)
    batches = record_batches(client)  # after the faults: what the service receives

    drain(stack, context_factory=roomy_context)

    assert faults.injected > 0
    assert remaining_keys(stack.dynamodb, TABLE) == truth.kept
    totals = finished(stack, run_id).totals
    assert (totals.deleted, totals.skipped) == (len(truth.doomed), 0)
    # The failed statements never ran, and only they were sent again: every item
    # reached the service exactly once.
    keys_sent = [key_id(statement_key(s)) for batch in batches for s in batch]
    assert sorted(keys_sent) == sorted(truth.doomed)
    assert totals.throttled > 0


def test_items_changed_between_scan_and_delete_get_the_item_paths_verdict(stack, monkeypatch):
    """Just before each batch, a writer deletes one item (gone: skipped), refreshes one
    (fresh: skipped, kept), rewrites one with an older age (still expired: deleted at its
    new value), flips one's ``where`` attribute to another matching value (deleted by the
    item path's condition) and one to a non-matching value (skipped, kept)."""
    truth, run_id = sweep_table(stack, monkeypatch, count=60)
    client = aws.client("dynamodb")
    changes = ["remove", "refresh", "older", "other_match", "unmatch"]
    done: dict[str, tuple[Any, ...]] = {}

    def writer(params: dict[str, Any]) -> None:
        for statement in params["Statements"]:
            if len(done) == len(changes):
                return
            key = statement_key(statement)
            if key_id(key) in done.values():
                continue
            change = changes[len(done)]
            done[change] = key_id(key)
            if change == "remove":
                stack.dynamodb.delete_item(TableName=TABLE, Key=key)
                continue
            item = stack.dynamodb.get_item(TableName=TABLE, Key=key)["Item"]
            item |= {
                "refresh": {"ts": {"S": "2999-01-01T00:00:00Z"}},
                "older": {"ts": OLDER_AGE},
                "other_match": {
                    "Completed": {"S": "1"} if "N" in item["Completed"] else {"N": "1"}
                },
                "unmatch": {"Completed": {"N": "0"}},
            }[change]
            stack.dynamodb.put_item(TableName=TABLE, Item=item)

    on_call(client, "BatchExecuteStatement", writer)
    calls: list[tuple[str, dict[str, Any]]] = []
    client.meta.events.register(
        "before-parameter-build.dynamodb",
        lambda params, model, **_: calls.append((model.name, dict(params))),
    )

    drain(stack, context_factory=roomy_context)

    # The worker's role on a batch-mode table grants exactly what these calls need.
    needed = {
        action
        for operation, params in calls
        for action, table in dynamodb_actions(operation, params)
        if table == TABLE
    }
    assert needed == {*SWEPT_TABLE_ACTIONS, *BATCH_DELETE_ACTIONS}
    assert len(done) == len(changes)
    left = remaining_keys(stack.dynamodb, TABLE)
    assert left == truth.kept | {done["refresh"], done["unmatch"]}, done
    totals = finished(stack, run_id).totals
    assert totals.expired == len(truth.doomed)
    assert totals.deleted == len(truth.doomed) - 3  # removed by the writer, refreshed, unmatched
    assert totals.skipped == 3


def test_dry_run_on_the_batch_path_deletes_nothing(stack, monkeypatch):
    truth, run_id = sweep_table(stack, monkeypatch, count=40, dry_run=True)
    batches = record_batches(aws.client("dynamodb"))

    drain(stack, context_factory=roomy_context)

    assert batches == []
    assert remaining_keys(stack.dynamodb, TABLE) == set(truth.keys)
    totals = finished(stack, run_id).totals
    assert (totals.expired, totals.deleted) == (len(truth.doomed), 0)
