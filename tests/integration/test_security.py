"""Security review, as tests: item data stays in the table, credentials stay out of
output, and the local emulator listens on loopback only.

Items carry a canary value outside their keys (and one as an unparseable age); after a
sweep that retries, fails a record and recovers, the canary must appear in no log line,
ledger item or queue message, while the keys (which checkpoints need) may.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from planner.handler import handler as planner_handler
from scavenger.observability import logger
from scavenger.runtime import lambda_runtime
from scavenger.tools import cli
from tests.conftest import LEDGER, configure_sweeps, drain, roomy_context
from tests.dataset import create_hash_table
from tests.faults import ErrorInjector
from tests.sweeps import sweep_spec

pytestmark = pytest.mark.integration

SECRET = "canary-item-secret-5be1"
CREDENTIAL = "canary-credential-91ac"
KEY_MARK = "key-canary"
TABLE = "Vault"
SWEEP = sweep_spec(
    "vault",
    TABLE,
    segments=2,
    where="#p <> :gone",
    names={"#p": "payload"},
    values={":gone": "gone"},
)


def seed_vault(dynamodb: Any) -> None:
    create_hash_table(dynamodb, TABLE)
    now = datetime.now(UTC)
    ages = [
        {"S": (now - timedelta(days=5)).isoformat()},  # expired
        {"S": (now + timedelta(days=5)).isoformat()},  # fresh
        {"S": f"{SECRET} in the age attribute"},  # unparseable
        {"N": "12"},  # wrong type
    ]
    for index in range(24):
        dynamodb.put_item(
            TableName=TABLE,
            Item={
                "id": {"S": f"{KEY_MARK}-{index:03d}"},
                "ts": ages[index % len(ages)],
                "payload": {"S": f"{SECRET} payload {index}"},
                "blob": {"B": SECRET.encode()},
            },
        )


def everything_in(stack: Any, queue_bodies: list[Any]) -> str:
    """The ledger's items, the messages that went through the queue and the DLQ's."""
    ledger = stack.dynamodb.scan(TableName=LEDGER)["Items"]
    dlq = stack.sqs.receive_message(
        QueueUrl=stack.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return json.dumps([ledger, queue_bodies, dlq], default=str)


def test_item_data_beyond_keys_never_reaches_logs_ledger_or_messages(stack, monkeypatch, capfd):
    seed_vault(stack.dynamodb)
    monkeypatch.setenv("SCAVENGER_PAGE_SIZE", "5")
    configure_sweeps(monkeypatch, SWEEP)
    client = lambda_runtime().dynamodb
    requests: list[tuple[str, dict[str, Any]]] = []
    for operation in ("Scan", "DeleteItem"):
        client.meta.events.register(
            f"before-parameter-build.dynamodb.{operation}",
            lambda params, operation=operation, **_: requests.append((operation, dict(params))),
        )
    # A throttled delete (retried) and a fatal one (the record fails, is logged and
    # recorded in the ledger, then succeeds on redelivery).
    ErrorInjector(client, "DeleteItem", rate=1.0, limit=2)
    ErrorInjector(client, "DeleteItem", rate=1.0, limit=1, code="ValidationException")
    # Every engine log line, at DEBUG, formatted as Lambda would write it.
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    previous_level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        (run,) = planner_handler({"sweep": "vault"}, roomy_context())["runs"]
        drained = drain(stack, context_factory=roomy_context)
    finally:
        logger.setLevel(previous_level)
        logger.removeHandler(handler)
    logs = lines.getvalue() + "".join(capfd.readouterr())  # and the EMF metrics

    stored = everything_in(stack, drained.bodies)
    assert drained.failures >= 1, "the fatal error path was not exercised"
    assert "segment failed" in logs and "retrying" in logs
    assert "ValidationException" in stored  # the segment's first_error
    kept = json.dumps(stack.dynamodb.scan(TableName=TABLE)["Items"], default=str)
    assert SECRET in kept and KEY_MARK in kept  # the canary is there to be found
    assert SECRET not in logs
    assert SECRET not in stored
    # Only the key and the age attribute ever leave the table; deletes ask for nothing back.
    for operation, params in requests:
        if operation == "Scan":
            projected = set(params["ProjectionExpression"].replace(" ", "").split(","))
            names = params["ExpressionAttributeNames"]
            assert {names[p] for p in projected} == {"id", "ts"}
        else:
            assert "ReturnValues" not in params
            assert "ReturnValuesOnConditionCheckFailure" not in params
    assert {operation for operation, _ in requests} == {"Scan", "DeleteItem"}
    assert run["started"]


def test_operator_commands_never_print_credentials(stack, monkeypatch, tmp_path, capsys):
    seed_vault(stack.dynamodb)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIAL)
    monkeypatch.setenv("AWS_SESSION_TOKEN", CREDENTIAL)
    config = tmp_path / "scavenger.toml"
    config.write_text(
        "[[sweeps]]\n"
        + "".join(
            f"{key} = {json.dumps(value)}\n"
            for key, value in SWEEP.items()
            if key not in ("names", "values")
        )
        + '[sweeps.names]\n"#p" = "payload"\n[sweeps.values]\n":gone" = "gone"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)

    outputs = []
    for argv in (
        ["plan", "--dry-run", "--json"],
        ["status", "--json"],
        ["dlq", "--json"],
        ["redrive", "--dry-run", "--json"],
    ):
        code = cli.main(argv)
        out, err = capsys.readouterr()
        outputs.append(out + err)
        assert code == 0, (argv, err)
    run_id = json.loads(outputs[0].splitlines()[0])["runs"][0]["run_id"]
    assert cli.main(["status", run_id, "--json"]) == 0
    outputs.append("".join(capsys.readouterr()))

    for output in outputs:
        assert CREDENTIAL not in output
        assert SECRET not in output


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["moto", "dynalite", "dynamodb-local"])
def test_the_local_emulator_listens_on_loopback_only(backend):
    from scavenger.tools.local.emulator import Emulator

    with Emulator(dynamodb=backend) as endpoints:
        ports = {urlsplit(url).port for url in (endpoints.sqs, endpoints.dynamodb)}
        listening = listening_sockets()
        for port in ports:
            addresses = {address for address, p in listening if p == port}
            assert addresses, f"nothing listens on {port}"
            assert addresses <= {"127.0.0.1", "::1"}, addresses


def listening_sockets() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket, from /proc/net/tcp and tcp6."""
    found: set[tuple[str, int]] = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state != "0A":  # LISTEN
                continue
            address, port = local.split(":")
            found.add((_address(address), int(port, 16)))
    return found


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ".".join(str(b) for b in reversed(raw))
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
    ipv6 = b"".join(words)
    if ipv6[:12] == b"\x00" * 10 + b"\xff\xff":
        return ".".join(str(b) for b in ipv6[12:])  # IPv4-mapped
    if ipv6 == b"\x00" * 15 + b"\x01":
        return "::1"
    return ipv6.hex()
