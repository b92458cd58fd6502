"""``scavenger local up`` / ``down`` as a user runs them: subprocesses in an empty
directory. The stack outlives ``up``; ``down`` stops every process ``up`` started
(checked in the process list) and is idempotent; stdout holds only the export lines,
and the operator commands work against the stack with those variables."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scavenger.tools.local.processes import children_of, stop_processes
from scavenger.tools.local.stack import STATE_FILE, Process
from tests.integration.conftest import pids_with_environment

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def scavenger(
    directory: Path, marker: str, *argv: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment |= {"SCAVENGER_TEST_MARKER": marker, **(extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "scavenger.tools.cli", *argv],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def exported(stdout: str) -> dict[str, str]:
    lines = stdout.strip().splitlines()
    assert lines and all(line.startswith(("export ", "unset ")) for line in lines), stdout
    return dict(
        line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export ")
    )


def recorded_processes(directory: Path) -> list[Process]:
    state = json.loads((directory / STATE_FILE).read_text())
    return [Process(**state["server"]), *(Process(**child) for child in state["children"])]


@pytest.fixture
def marker(tmp_path: Path) -> object:
    marker = f"scavenger-local-{secrets.token_hex(6)}"
    yield marker
    scavenger(tmp_path, marker, "local", "down")  # whatever a test left behind
    assert pids_with_environment(marker) == set()


def test_local_up_outlives_the_command_and_down_stops_everything(
    tmp_path: Path, marker: str
) -> None:
    up = scavenger(tmp_path, marker, "local", "up", "--dynamodb", "moto", "--seed-items", "50")

    assert up.returncode == 0, up.stderr
    environment = exported(up.stdout)  # stdout: the export lines, nothing else
    assert set(environment) >= {
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    assert environment["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert "local stack up" in up.stderr
    processes = recorded_processes(tmp_path)
    assert len(processes) >= 2 and all(process.alive() for process in processes)
    assert {process.pid for process in processes} <= pids_with_environment(marker)
    assert "[resources]" in (tmp_path / "scavenger.toml").read_text()

    again = scavenger(tmp_path, marker, "local", "up", "--dynamodb", "moto")
    assert again.returncode == 0 and exported(again.stdout) == environment
    assert "already up" in again.stderr
    assert recorded_processes(tmp_path) == processes

    # The operator commands work against it with those variables, output on stdout.
    status = scavenger(tmp_path, marker, "status", extra=environment)
    assert status.returncode == 0, status.stderr
    assert "no runs in the ledger" in status.stdout and status.stderr == ""
    plan = scavenger(tmp_path, marker, "plan", "--dry-run", extra=environment)
    assert plan.returncode == 0 and "planned runs" in plan.stdout and plan.stderr == ""
    # In a shell: `> out.txt` holds the table, `2>/dev/null` drops only the rest.
    shell = subprocess.run(
        ["bash", "-c", "scavenger status > out.txt && scavenger work --workers 1 2>/dev/null"],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            **environment,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "SCAVENGER_TEST_MARKER": marker,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr
    assert "recent runs" in (tmp_path / "out.txt").read_text()
    assert shell.stdout.startswith("queue drained in") and shell.stderr == ""
    nope = scavenger(tmp_path, marker, "status", "--sweep", "nope", extra=environment)
    assert nope.returncode == 2 and nope.stdout == ""
    assert nope.stderr.startswith("scavenger status: error: --sweep nope: no such sweep")
    assert nope.stderr.count("\n") == 1

    down = scavenger(tmp_path, marker, "local", "down")

    assert down.returncode == 0, down.stderr
    assert not any(process.alive() for process in processes)
    assert pids_with_environment(marker) == set()
    assert not (tmp_path / STATE_FILE).exists()
    assert not (tmp_path / "scavenger.toml").exists()  # ours and unchanged: removed
    twice = scavenger(tmp_path, marker, "local", "down")
    assert twice.returncode == 0 and "no local stack here" in twice.stderr


def test_local_up_refuses_to_overwrite_a_config_and_starts_nothing(
    tmp_path: Path, marker: str
) -> None:
    mine = tmp_path / "scavenger.toml"
    mine.write_text("# my own sweeps\n")

    refused = scavenger(tmp_path, marker, "local", "up", "--dynamodb", "moto")

    assert refused.returncode == 2 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("scavenger local: error: scavenger.toml exists: pass --force")
    assert not (tmp_path / STATE_FILE).exists()
    assert pids_with_environment(marker) == set()
    assert mine.read_text() == "# my own sweeps\n"

    other = scavenger(tmp_path, marker, "local", "up", "--dynamodb", "moto", "--config", "o.toml")
    assert other.returncode == 0, other.stderr
    (tmp_path / "o.toml").write_text((tmp_path / "o.toml").read_text() + "# changed\n")
    assert scavenger(tmp_path, marker, "local", "down").returncode == 0
    assert (tmp_path / "o.toml").exists()  # changed since up wrote it: kept
    assert mine.read_text() == "# my own sweeps\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["local"], "the following arguments are required: action"),
        (["local", "sideways"], "invalid choice: 'sideways'"),
        (["local", "up", "--seed-items", "-1"], "--seed-items: -1 must be in 0..1000000"),
        (["local", "up", "--endpoint-url", "http://127.0.0.1:9"], "--endpoint-url: `scavenger"),
        (["local", "up", "--dynamodb", "oracle"], "invalid choice: 'oracle'"),
    ],
)
def test_local_mistakes_are_one_line(
    tmp_path: Path, marker: str, argv: list[str], message: str
) -> None:
    refused = scavenger(tmp_path, marker, *argv)
    assert refused.returncode == 2 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert message in line
    assert not (tmp_path / STATE_FILE).exists()


@pytest.mark.skipif(shutil.which("java") is None, reason="Java is not installed")
def test_local_up_on_dynamodb_local_records_and_stops_the_jvm(tmp_path: Path, marker: str) -> None:
    up = scavenger(tmp_path, marker, "local", "up", "--dynamodb", "dynamodb-local")

    assert up.returncode == 0, up.stderr
    environment = exported(up.stdout)
    assert environment["AWS_ENDPOINT_URL_DYNAMODB"] != environment["AWS_ENDPOINT_URL_SQS"]
    assert "unset AWS_ENDPOINT_URL" in up.stdout
    processes = recorded_processes(tmp_path)
    assert len(processes) == 3  # the server, moto, the JVM
    commands = [Path(f"/proc/{process.pid}/cmdline").read_bytes() for process in processes]
    assert any(b"java" in command for command in commands)
    status = scavenger(tmp_path, marker, "status", extra=environment)
    assert status.returncode == 0 and "no runs in the ledger" in status.stdout
    # AWS's own engine reads the sweep's where before the planner writes anything.
    config = (tmp_path / "scavenger.toml").read_text()
    broken = config.replace('"#c IN (:n1, :s1)"', '"#c IN (:n1, :s1) AND status = :n1"')
    (tmp_path / "broken.toml").write_text(broken)
    refused = scavenger(tmp_path, marker, "plan", "--config", "broken.toml", extra=environment)
    assert refused.returncode == 2 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("scavenger plan: error: sweep 'stale-workers': where: DynamoDB")
    assert "reserved keyword" in line
    assert (
        "no runs in the ledger" in scavenger(tmp_path, marker, "status", extra=environment).stdout
    )

    assert scavenger(tmp_path, marker, "local", "down").returncode == 0
    assert not any(process.alive() for process in processes)
    assert pids_with_environment(marker) == set()


def test_a_process_is_known_by_pid_and_start_time_and_stopped_for_certain() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        process = Process.of(child.pid)
        assert process is not None and process.alive()
        assert process in children_of(os.getpid())
        # A pid reused by another process is not this one: nothing is signalled.
        assert not Process(child.pid, process.started + 1).alive()

        stop_processes((process,))

        assert child.wait(timeout=5) != 0 and not process.alive()
        assert Process.of(child.pid) is None
    finally:
        child.kill()
        child.wait()
