"""Hostile command lines: real subcommands and flags with junk values, run in-process.

AWS is moto's in-process mock with an empty account (no sockets), and every config
names resources that do not exist, so no command can do anything real. Each mistake
must end in a non-zero exit and one line on stderr, with no traceback, nothing on
stdout, no credential echoed, and the account still empty afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from scavenger import aws
from scavenger.tools import cli
from tests.dataset import create_hash_table
from tests.properties import fixture_examples

SECRET_KEY = "canary-secret-4f1e8a"  # stands in for a real secret access key
URL_PASSWORD = "canary-password-77d2"
COMMAND_FLAGS = {
    "plan": ["--sweep", "--dry-run"],
    "work": ["--workers", "--timeout", "--batch-size", "--retry-delay"],
    "status": ["--sweep", "--limit"],
    "requeue": ["--segment", "--from-start", "--force"],
    "redrive": ["--max", "--dry-run", "--native"],
    "dlq": ["--max"],
}
COMMANDS = tuple(COMMAND_FLAGS)
SWEEP_TOML = """
[[sweeps]]
name = "stale-workers"
table = "Workers"
age_attribute = "ts"
age_format = "iso8601"
max_age = "48h"
"""
VALID_TOML = f"""{SWEEP_TOML}
[resources]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/absent.fifo"
dlq_url = "https://sqs.us-east-1.amazonaws.com/123456789012/absent-dlq.fifo"
ledger_table = "absent-ledger"
"""
CONFIGS = {
    "valid.toml": VALID_TOML,
    "no-resources.toml": VALID_TOML.split("[resources]")[0],
    "broken.toml": "[[sweeps]\nname = ",
    "shape.toml": "sweeps = 3\n",
    "binary.toml": "\udcff",
}

junk_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "-1", "0", "11", "1e9", "nan", "\u00e9", "x" * 3000, "--", "-"]),
    st.integers(-(10**12), 10**12).map(str),
)
endpoints = st.sampled_from(
    [
        "junk",
        "ftp://127.0.0.1",
        "http://",
        "http://127.0.0.1:99999",
        "http://[::1",
        f"http://admin:{URL_PASSWORD}@127.0.0.1:9",
        f"https://{URL_PASSWORD}@example.invalid",
    ]
)


@st.composite
def command_lines(draw: st.DrawFn, config_dir: Path) -> list[str]:
    command = draw(st.sampled_from(COMMANDS))
    options: dict[str, Any] = {
        "--config": st.sampled_from([str(config_dir / name) for name in CONFIGS])
        | st.just(str(config_dir / "missing.toml"))
        | junk_text,
        "--endpoint-url": endpoints,
        "--region": st.sampled_from(["us-east-1", "eu-west-1", "bad region", "x" * 70, ""]),
        "--stack": junk_text,
        "--json": None,
        "--sweep": junk_text,
        "--dry-run": None,
        "--limit": junk_text,
        "--max": junk_text,
        "--segment": junk_text,
        "--from-start": None,
        "--force": None,
        "--native": None,
        "--workers": junk_text,
        "--timeout": junk_text,
        "--batch-size": junk_text,
        "--retry-delay": junk_text,
        "--no-such-flag": junk_text,
    }
    own = ["--config", "--endpoint-url", "--region", "--stack", "--json", *COMMAND_FLAGS[command]]
    flags = st.sampled_from(own) | st.sampled_from(sorted(options))  # mostly its own
    argv = [command]
    for flag in draw(st.lists(flags, max_size=5)):
        argv.append(flag)
        if options[flag] is not None:
            argv.append(draw(options[flag]))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        argv.insert(draw(st.integers(1, len(argv))), draw(junk_text))
    return argv


@pytest.fixture
def empty_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with nothing in it, a secret-looking key, and configs naming absent resources."""
    from moto import mock_aws

    for name in [n for n in os.environ if n.startswith("SCAVENGER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    for name, text in CONFIGS.items():
        (tmp_path / name).write_text(text, encoding="utf-8", errors="surrogateescape")
    monkeypatch.chdir(tmp_path)
    # The fleet must never run: it would spawn processes that talk to real endpoints.
    from scavenger.tools.local.fleet import Fleet

    def no_fleet(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a hostile command line started the fleet")

    monkeypatch.setattr(Fleet, "run", no_fleet)
    # Nor may the demo start an emulator: every demo line here holds a mistake.
    from scavenger.tools.local.emulator import Emulator

    def no_emulator(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a hostile command line started an emulator")

    monkeypatch.setattr(Emulator, "start", no_emulator)
    with mock_aws():
        aws.reset_clients()
        yield tmp_path
    aws.reset_clients()


def account_is_empty() -> bool:
    dynamodb = aws.client("dynamodb", region="us-east-1")
    sqs = aws.client("sqs", region="us-east-1")
    return not dynamodb.list_tables()["TableNames"] and not sqs.list_queues().get("QueueUrls")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI on ``argv``, check it failed with one clean line on stderr, nothing on
    stdout and no secret anywhere; its exit code and stderr."""
    code, out, err = run_cli(argv, capsys)
    assert code != 0, (argv, out, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, (argv, err)
    assert lines[0].startswith("scavenger") and "error" in lines[0], (argv, err)
    assert out == "", (argv, out)
    for secret in (SECRET_KEY, URL_PASSWORD):
        assert secret not in err + out
    return code, err


@fixture_examples(120)
@given(data=st.data())
def test_hostile_command_lines_fail_cleanly_and_change_nothing(
    empty_account: Path, capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    argv = data.draw(command_lines(empty_account))
    _, err = one_line_error(argv, capsys)
    event("usage error" if err.startswith("scavenger: error:") else err.split("error: ")[-1][:40])
    assert account_is_empty()


@pytest.mark.parametrize(
    "argv",
    [
        ["nosuch"],
        ["status", "--limit", "many"],
        ["status", "--limit", "0"],
        ["requeue", "run"],
        ["requeue", "run", "--segment", "x"],
        ["dlq", "--max", "-3"],
        ["redrive", "--native", "--max", "2"],
        ["work", "--workers", "0"],
        ["work", "--batch-size", "11"],
        ["plan", "--config", "broken.toml"],
        ["plan", "--config", "missing.toml"],
        ["plan", "--config", "valid.toml", "--sweep", "other"],
        ["status", "--config", "binary.toml"],
        ["status", "--endpoint-url", "junk"],
        ["status", "--region", "bad region"],
        ["status", "--stack", "NoSuchStack"],
        ["dlq", "--config", "valid.toml"],
        ["status", "--config", "valid.toml", "--endpoint-url", f"http://u:{URL_PASSWORD}@h:1"],
    ],
)
def test_each_kind_of_mistake_is_one_line(
    empty_account: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    one_line_error(argv, capsys)
    assert account_is_empty()


def test_a_junk_endpoint_in_the_environment_is_a_user_error(
    empty_account: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://me:{URL_PASSWORD}@127.0.0.1:1")
    _, err = one_line_error(["status", "--config", "valid.toml"], capsys)
    assert "AWS_ENDPOINT_URL" in err


def test_urls_in_error_messages_lose_their_credentials() -> None:
    text = f'Could not connect to the endpoint URL: "http://admin:{URL_PASSWORD}@10.0.0.1/"'
    assert URL_PASSWORD not in cli.redact(text)
    assert "http://***@10.0.0.1/" in cli.redact(text)
    assert cli.redact("https://sqs.us-east-1.amazonaws.com/1/q.fifo") == (
        "https://sqs.us-east-1.amazonaws.com/1/q.fifo"
    )


def test_help_is_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["status", "--help"], capsys)
    assert code == 0 and "usage" in out


def test_no_command_shows_the_commands_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli([], capsys)
    assert code != 0 and out == ""
    assert "COMMAND" in err and "Traceback" not in err


def test_control_characters_in_arguments_stay_on_one_line(
    empty_account: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, err = one_line_error(["status", "--limit", "1\n2\x1e3\u2028"], capsys)
    assert "1\\n2" in err


# -- the demo ------------------------------------------------------------------------------

# Each of these is wrong on its own, whatever else the line holds.
DEMO_MISTAKES = [
    ["--items", "0"],
    ["--items", "-5"],
    ["--items", "many"],
    ["--segments", "0"],
    ["--segments", "10001"],
    ["--workers", "0"],
    ["--timeout", "0"],
    ["--timeout", "-1"],
    ["--timeout", "nan"],
    ["--batch-size", "0"],
    ["--batch-size", "11"],
    ["--dynamodb", "oracle"],
    ["--seed", "x"],
    ["--endpoint-url", "junk"],
    ["--endpoint-url", f"http://admin:{URL_PASSWORD}@127.0.0.1:9"],
    ["--chaos", "--endpoint-url", "http://127.0.0.1:9"],
    ["--chaos", "--batch-size", "2"],
]
DEMO_FLAGS: dict[str, Any] = {
    "--items": junk_text,
    "--segments": junk_text,
    "--workers": junk_text,
    "--timeout": junk_text,
    "--batch-size": junk_text,
    "--dynamodb": st.sampled_from(["moto", "dynalite", "oracle", ""]),
    "--seed": junk_text,
    "--region": st.sampled_from(["us-east-1", "bad region", ""]),
    "--json": None,
    "--chaos": None,
}


@fixture_examples(60)
@given(data=st.data())
def test_hostile_demo_lines_fail_cleanly_and_start_nothing(
    empty_account: Path, capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    mistake = data.draw(st.sampled_from(DEMO_MISTAKES))
    argv = ["demo"]
    for flag in data.draw(st.lists(st.sampled_from(sorted(DEMO_FLAGS)), max_size=4)):
        argv.append(flag)
        if DEMO_FLAGS[flag] is not None:
            argv.append(data.draw(DEMO_FLAGS[flag]))
    argv += mistake  # last, so argparse keeps it over an earlier value of the same flag
    code, err = one_line_error(argv, capsys)
    assert code == 2, (argv, err)
    assert "starting the emulator" not in err
    assert account_is_empty()


@pytest.mark.parametrize("mistake", DEMO_MISTAKES, ids=" ".join)
def test_each_demo_mistake_is_one_line_and_exit_2(
    empty_account: Path, capsys: pytest.CaptureFixture[str], mistake: list[str]
) -> None:
    code, _ = one_line_error(["demo", *mistake], capsys)
    assert code == 2
    assert account_is_empty()


# -- expressions DynamoDB cannot read ---------------------------------------------------------

BROKEN_EXPRESSIONS = [
    ("#c IN (:n1, ", {"#c": "Completed"}, {":n1": 1}),
    ("#c IN (:n1 :s1)", {"#c": "Completed"}, {":n1": 1, ":s1": "1"}),
    ("#c = :n1 AND", {"#c": "Completed"}, {":n1": 1}),
    ("#c = = :n1", {"#c": "Completed"}, {":n1": 1}),
    ("(#c = :n1", {"#c": "Completed"}, {":n1": 1}),
    ("#c BETWEEN :n1", {"#c": "Completed"}, {":n1": 1}),
    ("nosuch_function(#c)", {"#c": "Completed"}, {}),
    ("#c", {"#c": "Completed"}, {}),
    # These pass the local syntax check; DynamoDB (here moto) rejects them.
    ("status = :n1", {}, {":n1": 1}),
    ("#c = :n1 AND size = :n1", {"#c": "Completed"}, {":n1": 1}),
]


@pytest.fixture
def swept_account(empty_account: Path) -> dict[str, Any]:
    """The swept table, a ledger and the queues exist: only the expression is wrong."""
    from scavenger.tools.provision import create_ledger_table, create_queues

    dynamodb = aws.client("dynamodb", region="us-east-1")
    sqs = aws.client("sqs", region="us-east-1")
    create_hash_table(dynamodb, "Workers")
    dynamodb.put_item(TableName="Workers", Item={"id": {"S": "a"}, "ts": {"S": "2001-01-01"}})
    create_ledger_table(dynamodb, "ledger")
    queues = create_queues(sqs, "hostile")
    return {"dynamodb": dynamodb, "sqs": sqs, "queue_url": queues.queue_url, "dlq": queues.dlq_url}


def _toml_table(mapping: dict[str, Any]) -> str:
    import json

    return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in mapping.items()) + " }"


@pytest.mark.parametrize(("where", "names", "values"), BROKEN_EXPRESSIONS, ids=lambda v: str(v))
def test_an_expression_dynamodb_cannot_read_is_one_line_and_writes_nothing(
    swept_account: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    where: str,
    names: dict[str, str],
    values: dict[str, Any],
) -> None:
    import json

    text = f"""{SWEEP_TOML}where = {json.dumps(where)}
names = {_toml_table(names)}
{f"values = {_toml_table(values)}" if values else ""}

[resources]
queue_url = "{swept_account["queue_url"]}"
ledger_table = "ledger"
"""
    Path("bad-where.toml").write_text(text, encoding="utf-8")
    for argv in (
        ["plan", "--config", "bad-where.toml"],
        ["plan", "--config", "bad-where.toml", "--dry-run", "--json"],
    ):
        code, err = one_line_error(argv, capsys)
        assert code == 2
        assert "sweep 'stale-workers': where:" in err, err
        assert not swept_account["dynamodb"].scan(TableName="ledger")["Items"]
        for url in (swept_account["queue_url"], swept_account["dlq"]):
            attributes = swept_account["sqs"].get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            assert attributes["ApproximateNumberOfMessages"] == "0"


def test_a_missing_config_passed_with_config_is_named(
    empty_account: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, err = one_line_error(["status", "--config", "elsewhere/absent.toml"], capsys)
    assert "elsewhere/absent.toml does not exist" in err
    assert "pass --config" not in err
