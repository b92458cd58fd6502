"""The demo's resources: the swept table, the FIFO queue and DLQ, the ledger, and the
sweep's config as a user would write it; what the functions' containers see of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from scavenger.config import Sweep, load_config, sweeps_to_json
from scavenger.errors import ScavengerError
from scavenger.schema import MAX_RECEIVE_COUNT
from scavenger.tools.local.emulator import Endpoints
from scavenger.tools.provision import create_ledger_table, create_queues

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

SWEEP_NAME = "stale-workers"


@dataclass
class DemoResources:
    table: str
    ledger_table: str
    queue_url: str
    dlq_url: str


def create_resources(
    dynamodb: DynamoDBClient,
    sqs: SQSClient,
    suffix: str,
    timeout: float,
    max_receive_count: int = MAX_RECEIVE_COUNT,
    queue_prefix: str = "scavenger-demo",
) -> DemoResources:
    table = f"Workers{suffix}"
    ledger_table = f"scavenger-ledger{suffix}"
    try:
        create_demo_table(dynamodb, table)
        try:
            create_ledger_table(dynamodb, ledger_table)
        except ClientError as exc:
            # dynalite has no UpdateTimeToLive; the ledger works without expiry.
            if exc.response.get("Error", {}).get("Code") != "UnknownOperationException":
                raise
        # DESIGN: the visibility timeout is at least 6x the worker timeout.
        queues = create_queues(
            sqs,
            f"{queue_prefix}{suffix}",
            visibility_timeout=max(1, int(6 * timeout)),
            max_receive_count=max_receive_count,
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ResourceInUseException", "QueueAlreadyExists"):
            raise ScavengerError(f"demo resources already exist at the endpoint: {exc}") from None
        raise
    return DemoResources(table, ledger_table, queues.queue_url, queues.dlq_url)


def create_demo_table(dynamodb: DynamoDBClient, table: str) -> None:
    """The swept table, keyed like the original one (WorkerId N, StartTime S)."""
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "WorkerId", "AttributeType": "N"},
            {"AttributeName": "StartTime", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "WorkerId", "KeyType": "HASH"},
            {"AttributeName": "StartTime", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table)


def delete_mode_for(backend: str) -> str:
    """The delete path a DynamoDB backend can run faithfully: batch (PartiQL) on AWS's
    own DynamoDB Local; item on moto (its PartiQL DELETE ignores the predicates) and on
    dynalite (no PartiQL)."""
    return "batch" if backend == "dynamodb-local" else "item"


def write_sweep_config(path: Path, toml: str) -> Sweep:
    """The sweep's TOML (``sweep_toml``) written as a user would, and read back by the
    real config parser."""
    path.write_text(toml, encoding="utf-8")
    return load_config(path).sweep(SWEEP_NAME)


def sweep_toml(
    table: str,
    segments: int,
    deletes_per_second: int = 0,
    delete_mode: str = "item",
    max_write_units_per_second: float | None = None,
) -> str:
    """The demo's sweep as ``[[sweeps]]`` TOML: what a user would write for this table.
    ``delete_mode`` stays "item" unless the caller's backend runs PartiQL faithfully
    (``delete_mode_for``); without ``max_write_units_per_second``: the planner's default
    budget."""
    budget = (
        ""
        if max_write_units_per_second is None
        else f"max_write_units_per_second = {max_write_units_per_second:g}\n"
    )
    return (
        "[[sweeps]]\n"
        f'name = "{SWEEP_NAME}"\n'
        f'table = "{table}"\n'
        'age_attribute = "StartExecutionTime"\n'
        'age_format = "iso8601"\n'
        'max_age = "48h"\n'
        'where = "#c IN (:n1, :s1)"\n'
        'names = { "#c" = "Completed" }\n'
        'values = { ":n1" = 1, ":s1" = "1" }\n'
        f"segments = {segments}\n"
        f"deletes_per_second = {deletes_per_second}\n"
        f'delete_mode = "{delete_mode}"\n' + budget
    )


def worker_environment(
    endpoints: Endpoints, resources: DemoResources, sweep: Sweep, page_size: int | None
) -> dict[str, str]:
    """What the functions' containers see: the endpoints, the sweep and the resources."""
    environment = endpoints.environment()
    environment |= {
        "SCAVENGER_SWEEPS": sweeps_to_json((sweep,)),
        "SCAVENGER_QUEUE_URL": resources.queue_url,
        "SCAVENGER_DLQ_URL": resources.dlq_url,
        "SCAVENGER_LEDGER_TABLE": resources.ledger_table,
        "POWERTOOLS_SERVICE_NAME": "scavenger",
    }
    if page_size:
        environment["SCAVENGER_PAGE_SIZE"] = str(page_size)
    return environment
