"""``scavenger demo`` end to end: exactly the expired items go, on DynamoDB Local, moto
and dynalite, and nothing is left running afterwards (also after a Ctrl-C or a kill)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scavenger.tools import cli
from scavenger.tools.local.demo import DemoOptions, DemoReport, run_demo
from scavenger.tools.local.emulator import NODE_DIR, Endpoints, default_backend
from tests.conftest import assert_usage_error
from tests.integration.conftest import OUTCOME_FIELDS, ROOT, child_pids, pids_with_environment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REQUIRED_FIELDS = {
    *OUTCOME_FIELDS,
    "deleted_per_second",
    "segments",
    "invocations",
    "continuations",
    "dlq",
    "api_calls",
    "run_id",
    "skipped",
}


def assert_exact(report: DemoReport) -> None:
    assert report.ok, report.as_dict()
    assert (report.wrongly_deleted, report.missed, report.fleet.dlq) == (0, 0, 0)
    assert report.deleted == report.expired == report.ledger.deleted
    assert report.kept == report.items - report.expired > 0
    assert report.fleet.timeouts == 0  # invariant 5: no worker runs into its timeout
    calls = report.fleet.api_calls
    # Item mode: a DeleteItem per delete; batch mode: up to 25 deletes a call.
    assert calls.get("DeleteItem", 0) + 25 * calls.get("BatchExecuteStatement", 0) >= report.deleted


def test_demo_on_moto_deletes_exactly_the_expired_items_across_continuations() -> None:
    before = child_pids()

    # Short invocations and small pages: each segment needs several invocations.
    report = run_demo(
        DemoOptions(items=600, workers=2, segments=2, timeout_seconds=3, page_size=25, seed=7)
    )

    assert_exact(report)
    assert report.fleet.continuations >= 2
    assert report.fleet.invocations > report.segments
    assert report.ledger.unparseable > 0  # mistyped and garbage ages were kept, and counted
    assert report.log_path is None  # the passing demo cleans up its log
    assert child_pids() <= before


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_demo_on_dynalite_deletes_exactly_the_expired_items() -> None:
    assert (NODE_DIR / "node_modules" / "dynalite").is_dir(), (
        f"dynalite is not installed: npm ci --prefix {NODE_DIR}"
    )
    before = child_pids()

    report = run_demo(DemoOptions(items=1500, workers=2, dynamodb="dynalite", seed=11))

    assert_exact(report)
    assert report.backend == "dynalite"
    assert child_pids() <= before


@pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed")
def test_demo_on_dynamodb_local_deletes_exactly_the_expired_items() -> None:
    before = child_pids()

    report = run_demo(DemoOptions(items=1500, workers=2, dynamodb="dynamodb-local", seed=12))

    assert_exact(report)
    assert report.backend == "dynamodb-local"
    # The batch path: calls of up to 25 statements, no DeleteItem unless a rewrite asks.
    assert 0 < report.fleet.api_calls["BatchExecuteStatement"] * 20 <= report.deleted + 500
    assert report.fleet.api_calls.get("DeleteItem", 0) == 0
    assert child_pids() <= before


def test_without_java_the_demo_says_so_in_one_line_and_uses_moto(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    assert default_backend(None, None) == "moto"
    assert default_backend("dynalite", None) == "dynalite"

    err = capsys.readouterr().err
    assert err.startswith("scavenger: java not found: DynamoDB runs on moto")
    assert err.count("\n") == 1


@pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed")
def test_a_killed_parent_leaves_no_dynamodb_local_behind() -> None:
    marker = f"scavenger-test-{secrets.token_hex(6)}"
    script = (
        "from scavenger.tools.local.emulator import Emulator\n"
        "Emulator(dynamodb='dynamodb-local').start()\n"
        "print('up', flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=dict(os.environ, SCAVENGER_TEST_MARKER=marker),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    assert parent.stdout.readline().strip() == "up"
    assert len(pids_with_environment(marker)) >= 3  # the parent, moto, the JVM

    parent.kill()
    parent.wait()

    assert wait_until_gone(marker) == set()


def demo_command(marker: str, *options: str, tmpdir: Path | None = None) -> subprocess.Popen[str]:
    environment = dict(os.environ, SCAVENGER_TEST_MARKER=marker)
    if tmpdir is not None:  # where the demo's temporary log goes
        environment["TMPDIR"] = str(tmpdir)
    environment.pop("AWS_ENDPOINT_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "scavenger.tools.cli", "demo", *options],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control starts background commands with SIGINT
        # ignored, and children inherit that: pytest run that way (as CI may) would
        # hand the demo a Ctrl-C it cannot hear. Start it as a terminal would.
        preexec_fn=_hear_ctrl_c,
    )


def _hear_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until_gone(marker: str, seconds: float = 10) -> set[int]:
    deadline = time.monotonic() + seconds
    while (left := pids_with_environment(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_demo_command_prints_the_report_as_json_and_leaves_no_process() -> None:
    marker = f"scavenger-test-{secrets.token_hex(6)}"

    command = demo_command(marker, "--items", "400", "--workers", "2", "--json")
    stdout, stderr = command.communicate(timeout=120)

    assert command.returncode == 0, stderr
    report = json.loads(stdout)
    assert set(report) >= REQUIRED_FIELDS
    assert report["wrongly_deleted"] == report["missed"] == 0
    assert report["deleted"] == report["expired"] > 0
    assert "PASS" in stderr and "wrongly deleted" in stderr
    assert wait_until_gone(marker) == set()


def test_ctrl_c_stops_the_demo_and_leaves_no_process(tmp_path: Path) -> None:
    marker = f"scavenger-test-{secrets.token_hex(6)}"
    command = demo_command(marker, "--items", "4000", "--workers", "2", tmpdir=tmp_path)
    assert command.stderr is not None
    deadline = time.monotonic() + 60
    for line in command.stderr:
        if "sweeping" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)  # the fleet's containers are up and working
    assert len(pids_with_environment(marker)) >= 3  # the CLI, moto, the containers

    command.send_signal(signal.SIGINT)
    _, stderr = command.communicate(timeout=30)

    assert command.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert wait_until_gone(marker) == set()
    # The temporary log it kept is named, and it is the only one.
    (kept,) = tmp_path.glob("scavenger-demo-*.log")
    assert f"function logs: {kept}" in stderr


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_against_an_endpoint_where_nothing_listens_is_one_line(tmp_path: Path) -> None:
    marker = f"scavenger-test-{secrets.token_hex(6)}"
    url = f"http://127.0.0.1:{free_port()}"

    command = demo_command(marker, "--endpoint-url", url, "--items", "10", tmpdir=tmp_path)
    stdout, stderr = command.communicate(timeout=60)

    assert command.returncode == 2, stderr
    assert stdout == ""
    assert stderr.strip().splitlines() == [
        f'scavenger demo: error: Could not connect to the endpoint URL: "{url}/"'
    ]
    assert not list(tmp_path.glob("scavenger-demo-*"))  # no temporary log left behind


def test_demo_human_report_is_on_stdout_and_progress_on_stderr() -> None:
    marker = f"scavenger-test-{secrets.token_hex(6)}"

    command = demo_command(marker, "--items", "200", "--workers", "2")
    stdout, stderr = command.communicate(timeout=120)

    assert command.returncode == 0, stderr
    assert "PASS" in stdout and "wrongly deleted" in stdout
    assert "starting the emulator" in stderr and "wrongly deleted" not in stderr


def test_demo_mistakes_create_nothing_in_a_running_emulator(
    emulator: Endpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    dynamodb, sqs = emulator.client("dynamodb"), emulator.client("sqs")

    def contents() -> tuple[list[str], list[str]]:
        return dynamodb.list_tables()["TableNames"], sqs.list_queues().get("QueueUrls", [])

    before = contents()
    for mistake in (["--items", "0"], ["--batch-size", "0"], ["--segments", "0"], ["--chaos"]):
        code = cli.main(["demo", "--endpoint-url", emulator.sqs, *mistake])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1, (mistake, err)
        assert "Traceback" not in err
    assert contents() == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--items", "0"], "--items: 0 must be at least 1"),
        (["--timeout", "1"], "--timeout: 1 is too short for --batch-size 1"),
        (["--workers", "0"], "--workers: 0 must be at least 1"),
        (["--batch-size", "11"], "--batch-size: 11 must be in 1..10"),
    ],
)
def test_demo_option_mistakes_are_one_line_errors(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_usage_error(capsys, "demo", options, message)


def test_dynalite_without_node_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    assert cli.main(["demo", "--dynamodb", "dynalite", "--items", "10"]) == 2

    err = capsys.readouterr().err.strip()
    assert err.startswith("scavenger demo: error: --dynamodb dynalite needs Node.js")
    assert "\n" not in err
