"""A Lambda function host: one warm process per container, a real deadline per invocation.

A :class:`Container` is a long-lived child process (a warm Lambda container). Its
init phase imports the handler once; each invocation gets a context whose
``get_remaining_time_in_millis`` follows a real deadline. An invocation that
overruns it is killed with its process, as Lambda does; the next one starts a
new container (a cold start). The child's stdout and stderr (JSON logs, EMF
lines) go to a log file, never to the terminal.

The host knows no harness. A harness (local chaos mode) plugs in through one hook:
a :class:`HandlerHook` in the spec names a function ``hook(handler, setting) ->
handler`` ("package.module.function") and a string setting. At init, after the
handler is imported, the container imports that function and runs what it returns
in the handler's place. Without a hook nothing else is imported or installed.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from scavenger.tools.local.child import ChildProcess

DEFAULT_HANDLER = "worker.handler.handler"
INIT_TIMEOUT_SECONDS = 60.0
# How long past its deadline an invocation may take to report back before it is killed:
# the answer crosses a pipe, Lambda's own cut-off is not finer than this.
KILL_GRACE_SECONDS = 0.2
POLL_SECONDS = 0.05
ACCOUNT_ID = "000000000000"


class InvocationTimedOut(Exception):
    """The invocation overran its deadline; its container was killed."""


class FunctionError(Exception):
    """The handler raised (the whole batch fails, as with Lambda)."""


@dataclass(frozen=True)
class HandlerHook:
    """A harness's way into a container (see the module's docstring): ``path`` names
    ``hook(handler, setting) -> handler``, called once at init with ``setting``."""

    path: str
    setting: str = ""


@dataclass(frozen=True)
class FunctionSpec:
    """What a container runs: the handler, its environment and its limits."""

    handler: str = DEFAULT_HANDLER
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 60.0
    memory_mb: int = 1024
    name: str = "scavenger-worker"
    region: str = "us-east-1"
    log_path: Path | None = None
    hook: HandlerHook | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.name}"


@dataclass(frozen=True)
class Invocation:
    """What came back from one invocation."""

    request_id: str
    result: Any
    seconds: float
    api_calls: Counter[str]


class LambdaContext:
    """The parts of Lambda's context object handlers and Powertools use."""

    def __init__(self, spec: FunctionSpec, request_id: str, deadline: float):
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        # CLOCK_MONOTONIC is system-wide on Linux, so the parent's deadline holds here.
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionHost(Protocol):
    """What the fleet needs of a container (a process here, or a thread in chaos tests)."""

    def invoke(
        self, event: Mapping[str, Any], *, abort: Callable[[], bool] = ...
    ) -> Invocation: ...
    def alive(self) -> bool: ...
    def kill(self) -> None: ...
    def close(self) -> None: ...


class Container:
    """One warm container: a child process that runs invocations one at a time."""

    def __init__(self, spec: FunctionSpec):
        self.spec = spec
        started = time.monotonic()
        self._child = ChildProcess("scavenger.tools.local.function:container_main", spec)
        self._await_ready()
        self.init_seconds = time.monotonic() - started

    @property
    def pid(self) -> int:
        return self._child.pid

    def _await_ready(self) -> None:
        connection = self._child.connection
        try:
            if not connection.poll(INIT_TIMEOUT_SECONDS):
                raise FunctionError(
                    f"{self.spec.name}: init did not finish in {INIT_TIMEOUT_SECONDS:.0f}s"
                )
            status, detail = connection.recv()
        except EOFError:
            self.kill()
            raise FunctionError(f"{self.spec.name}: the container exited during init") from None
        except BaseException:
            self.kill()
            raise
        if status != "ready":
            self.kill()
            raise FunctionError(f"{self.spec.name}: init failed: {detail}")

    def invoke(
        self,
        event: Mapping[str, Any],
        *,
        abort: Callable[[], bool] = lambda: False,
    ) -> Invocation:
        """Run one invocation; kill the container if it overruns its deadline.

        Raises InvocationTimedOut (the container is dead then: start a new one) or
        FunctionError (the handler raised; the container stays warm).
        """
        connection = self._child.connection
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        deadline = started + self.spec.timeout_seconds
        connection.send((request_id, dict(event), deadline))
        while not connection.poll(POLL_SECONDS):
            now = time.monotonic()
            if now > deadline + KILL_GRACE_SECONDS or abort():
                self.kill()
                raise InvocationTimedOut(
                    f"{self.spec.name}: request {request_id} killed after "
                    f"{now - started:.2f}s (timeout {self.spec.timeout_seconds:g}s)"
                )
        try:
            status, payload, calls = connection.recv()
        except EOFError:
            self.kill()
            raise FunctionError(f"{self.spec.name}: container died during {request_id}") from None
        if status != "ok":
            raise FunctionError(payload)
        return Invocation(request_id, payload, time.monotonic() - started, Counter(calls))

    def alive(self) -> bool:
        return self._child.alive()

    def kill(self) -> None:
        """End the process now (an overrun, or shutdown)."""
        self._child.kill()

    def close(self, *, wait: bool = True) -> None:
        """Let the container finish its loop, as an idle Lambda container is retired.
        ``wait=False`` retires it in the background (nothing waits for that on AWS)."""
        if wait:
            self._child.stop(None)
            return
        threading.Thread(
            target=self._child.stop, args=(None,), name=f"retire-{self.pid}", daemon=True
        ).start()


def container_main(connection: Connection, spec: FunctionSpec) -> None:
    """Child process: init once, then serve invocations until the socket closes."""
    _redirect_output(spec.log_path)
    os.environ.clear()
    os.environ.update(spec.environment)
    try:
        handler = import_handler(spec.handler)
        calls: Counter[str] = Counter()
        _count_api_calls(calls)
        if spec.hook is not None:
            handler = import_handler(spec.hook.path)(handler, spec.hook.setting)
    except Exception:
        text = traceback.format_exc()
        print(text, file=sys.stderr, flush=True)
        connection.send(("init-error", text.strip().splitlines()[-1]))
        return
    connection.send(("ready", None))
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            # Retired: the process ends without the interpreter's teardown (a Lambda
            # container is frozen and dropped, nothing runs after its last invocation).
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        request_id, event, deadline = request
        calls.clear()
        try:
            result = handler(event, LambdaContext(spec, request_id, deadline))
        except Exception:
            text = traceback.format_exc()
            print(text, file=sys.stderr, flush=True)
            connection.send(("error", text.strip().splitlines()[-1], dict(calls)))
        else:
            connection.send(("ok", result, dict(calls)))


def import_handler(path: str) -> Callable[[Any, Any], Any]:
    """``"package.module.function"`` -> the function, as Lambda resolves a handler string."""
    module_name, _, function_name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {path!r} must look like module.function")
    handler: Callable[[Any, Any], Any] = getattr(
        importlib.import_module(module_name), function_name
    )
    return handler


def _redirect_output(log_path: Path | None) -> None:
    target = os.open(
        str(log_path) if log_path else os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)


def _count_api_calls(calls: Counter[str]) -> None:
    """Count the function's AWS calls by operation with a botocore ``after-call`` hook.

    The hook goes on the clients of the shared factory, which the runtime reuses:
    both resolve the endpoint and region from the same environment.
    """
    from scavenger import aws

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    for service in ("dynamodb", "sqs"):
        aws.client(service).meta.events.register("after-call", count)
