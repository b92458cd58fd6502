"""The ledger's one paging helper: every Query or Scan page is read, each from the last
one's LastEvaluatedKey, and a worker's paged read never runs past its budget's floor."""

from __future__ import annotations

from typing import Any

import pytest

from scavenger.errors import RetryableError
from scavenger.ledger import Ledger
from scavenger.records import Counts
from scavenger.retry import RetryPolicy


class PagedClient:
    """Answers Query and Scan with ``pages`` in turn; notes each request."""

    def __init__(self, pages: list[list[dict[str, Any]]]):
        self.pages = pages
        self.requests: list[dict[str, Any]] = []

    def _page(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        index = len(self.requests) - 1
        page: dict[str, Any] = {"Items": self.pages[index]}
        if index + 1 < len(self.pages):
            page["LastEvaluatedKey"] = {"part": {"S": f"after-{index}"}}
        return page

    query = scan = _page


class Budget:
    def __init__(self, seconds: float):
        self.seconds = seconds

    def remaining_seconds(self) -> float:
        return self.seconds


def run_item(run_id: str, created_at: str) -> dict[str, Any]:
    strings = {"run_id": run_id, "part": "RUN", "sweep": "sweep", "table": "Workers"}
    strings |= {"cutoff": "2026-11-21T02:00:00Z", "created_at": created_at, "status": "running"}
    item: dict[str, Any] = {name: {"S": value} for name, value in strings.items()}
    return item | {"total_segments": {"N": "2"}, "dry_run": {"BOOL": False}}


def done_segment(deleted: int) -> dict[str, Any]:
    counters = {name: {"N": "0"} for name in Counts().as_dict()}
    return {"status": {"S": "done"}, **counters, "deleted": {"N": str(deleted)}}


def test_every_page_is_read_from_the_last_ones_key() -> None:
    client = PagedClient([[run_item("a", "2026-11-01")], [], [run_item("b", "2026-11-02")]])

    runs = Ledger(client, "Ledger").list_runs()

    assert [run.run_id for run in runs] == ["b", "a"]
    starts = [request.get("ExclusiveStartKey") for request in client.requests]
    assert starts == [None, {"part": {"S": "after-0"}}, {"part": {"S": "after-1"}}]


def test_a_sum_with_time_to_spare_reads_every_page() -> None:
    client = PagedClient([[done_segment(3)], [done_segment(4)]])
    retry = RetryPolicy(Budget(10.0), floor_seconds=1.0)

    done, totals = Ledger(client, "Ledger", retry).sum_done_segments("r")

    assert (done, totals.deleted) == (2, 7)


def test_a_sum_at_the_budget_floor_reads_no_further_page() -> None:
    client = PagedClient([[done_segment(3)], [done_segment(4)]])
    retry = RetryPolicy(Budget(1.0), floor_seconds=1.0)

    with pytest.raises(RetryableError, match="out of time summing run r"):
        Ledger(client, "Ledger", retry).sum_done_segments("r")
    assert len(client.requests) == 1
