"""The local function host knows no harness: a harness plugs in through its HandlerHook.

The handler and the hook at the top run inside a container process (imported
there by name, as the host resolves them).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from scavenger.tools.local.function import Container, FunctionSpec, HandlerHook

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("importable_tests")]

HERE = "tests.integration.test_function_hook"


def echo_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"event": event, "harness_loaded": "scavenger.tools.local.chaos" in sys.modules}


def tagging_hook(handler: Callable[[Any, Any], Any], setting: str) -> Callable[[Any, Any], Any]:
    def tagged(event: Any, context: Any) -> Any:
        return handler(event, context) | {"hooked": setting}

    return tagged


def invoke_once(spec: FunctionSpec) -> Any:
    container = Container(spec)
    try:
        return container.invoke({"n": 1}).result
    finally:
        container.close()


def test_a_container_runs_what_its_hook_returns_in_the_handlers_place() -> None:
    hook = HandlerHook(f"{HERE}.tagging_hook", "setting-7")

    result = invoke_once(FunctionSpec(handler=f"{HERE}.echo_handler", hook=hook))

    assert result == {"event": {"n": 1}, "harness_loaded": False, "hooked": "setting-7"}


def test_a_container_without_a_hook_runs_the_handler_alone() -> None:
    result = invoke_once(FunctionSpec(handler=f"{HERE}.echo_handler"))

    assert result == {"event": {"n": 1}, "harness_loaded": False}


def test_the_function_host_and_the_fleet_import_nothing_of_chaos() -> None:
    code = (
        "import sys, scavenger.tools.local.function, scavenger.tools.local.fleet; "
        "print(sorted(m for m in sys.modules if m.startswith('scavenger.tools.local.chaos')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "[]"
