"""``scavenger bench`` on a tiny table, on DynamoDB Local and on moto: every figure is
reported, every mode's result is checked against the seeded truth, and a wrong
result voids the benchmark.

No timing is asserted: a benchmark is not a timed test.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import boto3
import pytest

from scavenger.tools import cli
from scavenger.tools.bench import throughput
from scavenger.tools.bench.sweepers import SweepJob
from scavenger.tools.bench.throughput import MODES, BenchOptions, Work, run_bench
from scavenger.tools.local.emulator import DynamoDBBackend
from tests.conftest import assert_usage_error
from tests.integration.conftest import OUTCOME_FIELDS, child_pids

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY = ["--items", "300", "--workers", "2", "--repeats", "1", "--no-cpu"]
# DESIGN.md's contract for `scavenger bench --json`, and the report's own fields.
REQUIRED_FIELDS = {
    "ok",
    "void",
    "dynamodb",
    "raw_deletes_per_second",
    "raw_item_deletes_per_second",
    "fleet_deletes_per_second",
    "fleet_vs_raw",
    "fleet_vs_raw_item",
    "worker_cpu_vs_bare_item",
    "baseline_deletes_per_second",
    "fleet_vs_baseline",
    "calls_per_deleted_item",
    "modes",
    "cpu",
    "machine",
    "settings",
}
RUN_FIELDS = {
    *OUTCOME_FIELDS,
    "ok",
    "deletes_per_second",
    "api_calls",
    "calls_per_deleted_item",
    "own_cpu_seconds",
    "other_cpu_seconds",
}


def delete_everything(job: SweepJob) -> Work:
    """A broken sweep: no age check and no condition, so fresh items go too."""
    client = boto3.client("dynamodb", endpoint_url=job.endpoint_url, region_name=job.region)
    started = time.monotonic()
    calls: Counter[str] = Counter()
    request = {"TableName": job.table}
    while True:
        page = client.scan(**request)
        calls["Scan"] += 1
        for item in page["Items"]:
            client.delete_item(TableName=job.table, Key={k: item[k] for k in throughput.KEYS})
            calls["DeleteItem"] += 1
        if "LastEvaluatedKey" not in page:
            return Work(time.monotonic() - started, calls)
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.mark.parametrize(
    ("backend", "raw_delete_call"),
    [("dynamodb-local", "BatchExecuteStatement"), ("moto", "DeleteItem")],
)
def test_bench_reports_every_figure_and_every_mode_leaves_exactly_the_fresh_items(
    backend: DynamoDBBackend, raw_delete_call: str
) -> None:
    before = child_pids()

    report = run_bench(
        BenchOptions(
            items=300,
            workers=2,
            repeats=1,
            dynamodb=backend,
            cpu_pages=1,
            cpu_page_size=50,
            cpu_repeats=1,
        )
    )

    data = report.as_dict()
    assert report.ok, data
    assert set(data) >= REQUIRED_FIELDS
    assert data["dynamodb"] == backend
    assert data["void"] == []
    assert set(data["modes"]) == set(MODES)
    for mode in MODES:
        (run,) = data["modes"][mode]["runs"]
        assert set(run) >= RUN_FIELDS
        # Checked against the seeded truth: exactly the expired items are gone.
        assert (run["wrongly_deleted"], run["missed"]) == (0, 0), (mode, run)
        assert run["deleted"] == run["expired"] > 0
        assert run["kept"] == run["items"] - run["expired"] > 0
        assert data[f"{mode}_deletes_per_second"] == data["modes"][mode]["deletes_per_second"] > 0
    # Every mode swept the same data: the same seed gives the same truth.
    assert len({data["modes"][m]["runs"][0]["expired"] for m in data["modes"]}) == 1
    # raw deletes the way the fleet can on this engine; raw_item and baseline per item.
    raw_calls = data["modes"]["raw"]["runs"][0]["api_calls"]
    assert set(raw_calls) == {"Scan", raw_delete_call}
    assert data["settings"]["raw_delete"] == ("batch" if backend == "dynamodb-local" else "item")
    for mode in ("raw_item", "baseline"):
        calls = data["modes"][mode]["runs"][0]["api_calls"]
        assert calls["DeleteItem"] == data["modes"][mode]["runs"][0]["deleted"]
    for ratio in ("fleet_vs_raw", "fleet_vs_raw_item", "fleet_vs_baseline"):
        assert data[ratio] > 0
    assert data["calls_per_deleted_item"] > 0
    assert data["worker_cpu_vs_bare_item"] == data["cpu"]["worker_vs_bare_cpu"] > 0
    assert set(data["cpu"]) >= {
        "worker_cpu_us_per_deleted_item",
        "bare_boto3_cpu_us_per_deleted_item",
        "worker_vs_bare_cpu",
    }
    assert len(data["machine"]["load_average_at_start"]) == 3
    assert child_pids() <= before


def test_a_mode_that_deletes_fresh_items_is_void_and_the_command_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(throughput.TABLE_SWEEPS, "baseline", delete_everything)

    code = cli.main(
        ["bench", *TINY, "--dynamodb", "moto", *("--mode", "raw", "--mode", "baseline"), "--json"]
    )

    captured = capsys.readouterr()
    assert code == 1, captured.err
    data = json.loads(captured.out)
    assert data["ok"] is False
    assert data["void"] == ["baseline repeat 1"]
    assert data["baseline_deletes_per_second"] is None
    assert data["fleet_vs_baseline"] is None
    (broken,) = data["modes"]["baseline"]["runs"]
    assert broken["void"] is True and broken["wrongly_deleted"] > 0
    assert data["modes"]["raw"]["ok"] is True
    assert data["raw_deletes_per_second"] > 0
    assert "VOID" in captured.err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--repeats", "0"], "--repeats: 0 must be at least 1"),
        (["--workers", "0"], "--workers: 0 must be at least 1"),
        (["--page-size", "0"], "--page-size: 0 must be in 1..10000"),
        (
            ["--endpoint-url", "http://127.0.0.1:1"],
            "--endpoint-url: bench starts its own emulator",
        ),
    ],
)
def test_bench_option_mistakes_are_one_line_errors(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_usage_error(capsys, "bench", options, message)
