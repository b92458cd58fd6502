"""A session-wide audit of the grants: record the functions' calls in any test run, then check
them against the synthesized roles.

``tests/infra/test_recorded_calls.py`` checks a representative run in every ``make test``;
this audit widens the net to whatever suites you run (fault injection, invariants, halts,
in-process chaos, operator commands), at the price of minutes, so it is not part of
``make test``::

    SCAVENGER_RECORD_CALLS=/tmp/calls.jsonl .venv/bin/python -m pytest -p tests.infra.audit \\
        tests/integration/test_sweep_faults.py tests/integration/test_invariants.py ...
    .venv/bin/python -m tests.infra.audit /tmp/calls.jsonl

With the plugin on, every botocore client made in the test process records the calls
that a handler (``planner.handler``/``worker.handler`` on the stack) makes; handlers run in
child processes (the fleet's containers) are not seen. Each call's table or queue is named
by the adapter that made it: the ledger (a ``Ledger`` on the stack whose table it is), the
segment queue (a ``SegmentQueue``), otherwise a swept table. Since suites name their tables
freely, a swept-table action must be granted on some swept table of the template.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import botocore.session

from tests.infra.calls import (
    PLANNER,
    WORKER,
    calling_function,
    dynamodb_actions,
    granted,
    sqs_action,
)

VARIABLE = "SCAVENGER_RECORD_CALLS"
HANDLERS = {"planner.handler.handler": PLANNER, "worker.handler.handler": WORKER}
_lock = threading.Lock()


def _adapter_names() -> tuple[set[str], set[str]]:
    """The ledger tables and segment queue URLs of the adapters on the calling stack."""
    from scavenger.ledger import Ledger
    from scavenger.queue import SegmentQueue

    ledgers: set[str] = set()
    queues: set[str] = set()
    frame = sys._getframe(2)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, Ledger):
            ledgers.add(owner.table_name)
        elif isinstance(owner, SegmentQueue):
            queues.add(owner.queue_url)
        frame = frame.f_back  # type: ignore[assignment]
    return ledgers, queues


def record_call(path: Path, params: dict[str, Any], model: Any, **_: Any) -> None:
    function = calling_function()
    if function is None:
        return
    ledgers, queues = _adapter_names()
    service = model.service_model.endpoint_prefix
    grants: list[list[str]] = []
    if service == "dynamodb":
        for action, table in dynamodb_actions(model.name, params):
            grants.append([action, "ledger" if table in ledgers else "swept-table"])
    elif service == "sqs":
        kind = "queue" if params.get("QueueUrl") in queues else f"unknown:{params.get('QueueUrl')}"
        grants.append([sqs_action(model.name), kind])
    else:
        grants.append([f"{service}:{model.name}", "unknown"])
    line = json.dumps({"function": function, "operation": model.name, "grants": grants})
    with _lock, path.open("a", encoding="utf-8") as sink:
        sink.write(line + "\n")


def pytest_configure(config: Any) -> None:
    """Hook every botocore client created from now on (``-p tests.infra.audit``)."""
    target = os.environ.get(VARIABLE)
    if not target:
        raise RuntimeError(f"-p tests.infra.audit needs {VARIABLE}=path/to/calls.jsonl")
    path = Path(target)
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register(
            "before-parameter-build",
            lambda params, model, **rest: record_call(path, params, model, **rest),
        )
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def recorded(lines: Iterable[str]) -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for line in lines:
        call = json.loads(line)
        for action, kind in call["grants"]:
            found.add((call["function"], action, kind))
    return found


def audit(calls: set[tuple[str, str, str]], template: dict[str, Any]) -> list[str]:
    """The recorded calls that the template's roles do not allow, one line each."""
    grants = granted(template, HANDLERS)
    allowed: set[tuple[str, str, str]] = set()
    for function, pairs in grants.items():
        for action, resource in pairs:
            kind = {"table": "swept-table"}.get(resource[0], resource[0])
            allowed.add((function, action, kind))
    return sorted(f"{f}: {a} on a {k} is not granted" for f, a, k in calls - allowed)


def main(argv: list[str]) -> int:
    from tests.infra.conftest import synthesize

    calls = recorded(Path(argv[1]).read_text(encoding="utf-8").splitlines())
    with tempfile.TemporaryDirectory() as outdir:
        template = synthesize(Path(outdir), {}).template.to_json()
    problems = audit(calls, template)
    functions = sorted({function for function, _, _ in calls})
    print(f"{len(calls)} distinct (function, action, resource) recorded for {functions}")
    for function, action, kind in sorted(calls):
        print(f"  {function}: {action} on {kind}")
    for problem in problems:
        print(f"NOT GRANTED {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
