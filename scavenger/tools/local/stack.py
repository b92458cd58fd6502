"""``scavenger local up`` / ``down``: the local emulators as a service that stays up.

``up`` starts a detached server process (``python -m scavenger.tools.local.stack serve``,
in a session of its own) that runs :class:`~scavenger.tools.local.emulator.Emulator`
with the chosen DynamoDB backend, so the emulators outlive the command, and tied
to that server, so they never outlive it. It then provisions the demo's table, the
FIFO queue and DLQ and the ledger, optionally seeds demo items, writes a ready
``scavenger.toml`` with ``[resources]``, and records the processes it started
(pid and start time, so a reused pid is never signalled) in a state file in the
working directory. ``down`` stops exactly those processes, removes the state file,
the server's log and the config ``up`` wrote (unless it was changed since).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scavenger.config import load_config
from scavenger.errors import ScavengerError
from scavenger.tools.local.demo import (
    DemoObserver,
    DemoResources,
    QuietObserver,
    create_resources,
    delete_mode_for,
    seed_table,
    sweep_toml,
)
from scavenger.tools.local.emulator import FAKE_CREDENTIALS, DynamoDBBackend, Emulator, Endpoints
from scavenger.tools.local.processes import Process, children_of, stop_processes

STATE_FILE = ".scavenger-local.json"
LOG_FILE = ".scavenger-local.log"
START_TIMEOUT_SECONDS = 120.0
# The queue's visibility timeout is 6x this: `scavenger work`'s default (the deployed
# worker's) function timeout.
WORK_TIMEOUT_SECONDS = 300.0
TABLE = "Workers"
QUEUE_PREFIX = "scavenger-local"


@dataclass(frozen=True)
class StackState:
    """What ``up`` started and wrote, as the state file records it."""

    server: Process
    children: tuple[Process, ...]
    backend: str
    sqs: str
    dynamodb: str
    region: str
    resources: dict[str, str]
    config: str
    config_sha256: str
    log: str
    seeded_items: int = 0
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(sqs=self.sqs, dynamodb=self.dynamodb, region=self.region)

    @property
    def processes(self) -> tuple[Process, ...]:
        return (self.server, *self.children)

    def alive(self) -> bool:
        return self.server.alive()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackState:
        return cls(
            **{
                **data,
                "server": Process(**data["server"]),
                "children": tuple(Process(**child) for child in data["children"]),
            }
        )


def read_state(path: Path) -> StackState | None:
    try:
        return StackState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as exc:
        raise ScavengerError(
            f"{path}: not a state file of `scavenger local up` ({exc}); remove it by hand"
        ) from None


def exports(endpoints: Endpoints) -> list[str]:
    """Shell lines that point every AWS client (boto3, the CLI, the functions) at the
    stack: ``eval "$(scavenger local up)"``. The credentials are dummies."""
    environment = endpoints.environment(base={})
    lines = []
    if "AWS_ENDPOINT_URL" not in environment:
        lines.append("unset AWS_ENDPOINT_URL")  # it would override the per-service ones
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        *FAKE_CREDENTIALS,
    ):
        if name in environment:
            lines.append(f"export {name}={shlex.quote(environment[name])}")
    return lines


# -- up -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpOptions:
    backend: DynamoDBBackend
    region: str
    config: Path
    force: bool = False
    seed_items: int = 0
    segments: int = 4
    directory: Path = field(default_factory=Path.cwd)

    def __post_init__(self) -> None:
        if not 0 <= self.seed_items <= 1_000_000:
            raise ScavengerError(f"--seed-items: {self.seed_items} must be in 0..1000000")
        if not 1 <= self.segments <= 1000:
            raise ScavengerError(f"--segments: {self.segments} must be in 1..1000")


def up(options: UpOptions, observer: DemoObserver | None = None) -> tuple[StackState, bool]:
    """Start the stack, or find the one already up here. Returns it, and whether it is new."""
    observer = observer or QuietObserver()
    state_path = options.directory / STATE_FILE
    existing = _running_here(state_path)
    if existing is not None:
        return existing, False
    if options.config.exists() and not options.force:
        raise ScavengerError(
            f"{options.config} exists: pass --force to overwrite it, or --config PATH "
            "to write the stack's config elsewhere"
        )
    observer.stage(f"starting the emulators (DynamoDB on {options.backend}, SQS on moto)")
    log = options.directory / LOG_FILE
    server, ready = _start_server(options, log)
    try:
        endpoints = Endpoints(sqs=ready["sqs"], dynamodb=ready["dynamodb"], region=options.region)
        resources = _provision(endpoints, options, observer)
        text = _write_config(options, resources)
        state = StackState(
            server=server,
            children=tuple(
                process
                for process in (Process.of(pid) for pid in ready["children"])
                if process is not None
            ),
            backend=options.backend,
            sqs=endpoints.sqs,
            dynamodb=endpoints.dynamodb,
            region=endpoints.region,
            resources={
                "table": resources.table,
                "queue_url": resources.queue_url,
                "dlq_url": resources.dlq_url,
                "ledger_table": resources.ledger_table,
            },
            config=str(options.config.resolve()),
            config_sha256=_sha256(text),
            log=str(log.resolve()),
            seeded_items=options.seed_items,
        )
        _write_atomically(state_path, json.dumps(state.to_json(), indent=2) + "\n")
    except BaseException:
        stop_processes((server, *children_of(server.pid)))
        raise
    return state, True


def _running_here(state_path: Path) -> StackState | None:
    """The stack up here, if its server lives; a dead one's leftovers are ended and its
    state file removed, so a new one starts afresh."""
    existing = read_state(state_path)
    if existing is not None and not existing.alive():
        _stop(existing)
        state_path.unlink(missing_ok=True)
        return None
    return existing


def _provision(endpoints: Endpoints, options: UpOptions, observer: DemoObserver) -> DemoResources:
    """The demo's table, the FIFO queue and DLQ and the ledger; the seeded items if asked."""
    with _fake_credentials():
        dynamodb, sqs = endpoints.client("dynamodb"), endpoints.client("sqs")
        observer.stage("creating the table, the FIFO queue and DLQ, and the ledger")
        resources = create_resources(
            dynamodb, sqs, "", WORK_TIMEOUT_SECONDS, queue_prefix=QUEUE_PREFIX
        )
        if options.seed_items:
            now = datetime.now(UTC).replace(microsecond=0)
            seed_table(dynamodb, TABLE, options.seed_items, now, random.Random(), observer)
    return resources


def _write_config(options: UpOptions, resources: DemoResources) -> str:
    """The sweep and ``[resources]``, written to ``--config`` and read back by the real
    parser; returns the text written."""
    mode = delete_mode_for(options.backend)
    text = sweep_toml(resources.table, options.segments, delete_mode=mode) + (
        "\n[resources]\n"
        f'queue_url = "{resources.queue_url}"\n'
        f'dlq_url = "{resources.dlq_url}"\n'
        f'ledger_table = "{resources.ledger_table}"\n'
    )
    options.config.write_text(text, encoding="utf-8")
    load_config(options.config)  # what we wrote, read back by the real parser
    return text


def _start_server(options: UpOptions, log: Path) -> tuple[Process, dict[str, Any]]:
    """The detached server; its answer (endpoints and children) comes in a ready file."""
    handle, name = tempfile.mkstemp(prefix="scavenger-local-", suffix=".json")
    os.close(handle)
    ready_path = Path(name)
    ready_path.unlink()
    try:
        with open(log, "ab") as log_stream:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scavenger.tools.local.stack",
                    "serve",
                    str(ready_path),
                    options.backend,
                    options.region,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_stream,
                stderr=log_stream,
                start_new_session=True,  # outlives this command and its terminal
                close_fds=True,
                cwd=options.directory,
            )
        server = Process.of(popen.pid)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready_path.exists():
            if popen.poll() is not None or time.monotonic() > deadline:
                popen.kill()
                popen.wait()
                raise ScavengerError(
                    f"the local emulators did not start (exit code {popen.poll()}); see {log}"
                )
            time.sleep(0.1)
        ready: dict[str, Any] = json.loads(ready_path.read_text(encoding="utf-8"))
    finally:
        ready_path.unlink(missing_ok=True)
    # A server that answers has been reaped by nobody yet: keep the Popen from
    # warning, its parent (init, once we exit) reaps it.
    popen.returncode = 0
    if "error" in ready or server is None:
        raise ScavengerError(f"the local emulators did not start: {ready.get('error')}")
    return server, ready


# -- down -----------------------------------------------------------------------------


def down(directory: Path | None = None) -> StackState | None:
    """Stop what ``up`` started here; None when nothing was (running it twice is fine)."""
    state_path = (directory or Path.cwd()) / STATE_FILE
    state = read_state(state_path)
    if state is None:
        return None
    _stop(state)
    config = Path(state.config)
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if _sha256(config.read_text(encoding="utf-8")) == state.config_sha256:
            config.unlink()  # ours, unchanged: it points at endpoints that are gone
    Path(state.log).unlink(missing_ok=True)
    state_path.unlink(missing_ok=True)
    return state


def _stop(state: StackState) -> None:
    stop_processes(state.processes)


# -- the server -----------------------------------------------------------------------


def serve(ready_path: Path, backend: DynamoDBBackend, region: str) -> int:
    """The detached server: run the emulators until SIGTERM (or SIGINT, SIGHUP)."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopping.set())
    emulator = Emulator(dynamodb=backend, region=region)
    try:
        endpoints = emulator.start()
    except Exception as exc:  # told to the waiting `up` through the ready file
        _write_atomically(ready_path, json.dumps({"error": str(exc)}))
        return 1
    try:
        children = sorted(children_of(os.getpid()), key=lambda child: child.pid)
        answer = {
            "sqs": endpoints.sqs,
            "dynamodb": endpoints.dynamodb,
            "children": [child.pid for child in children],
        }
        _write_atomically(ready_path, json.dumps(answer))
        print(f"scavenger local: serving {answer}", flush=True)
        while not stopping.wait(1.0):
            pass
    finally:
        emulator.stop()
    print("scavenger local: stopped", flush=True)
    return 0


# -- helpers --------------------------------------------------------------------------


@contextlib.contextmanager
def _fake_credentials() -> Iterator[None]:
    """The emulators take any credentials; a real profile is never sent to them."""
    added = [name for name in FAKE_CREDENTIALS if name not in os.environ]
    os.environ.update({name: FAKE_CREDENTIALS[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        sys.exit(serve(Path(sys.argv[2]), sys.argv[3], sys.argv[4]))  # type: ignore[arg-type]
    sys.exit("usage: python -m scavenger.tools.local.stack serve READY_FILE BACKEND REGION")
