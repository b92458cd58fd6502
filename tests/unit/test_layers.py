"""The layering contract, read from the import graph of scavenger/, planner/ and worker/.

Every import counts: module level, function level and under TYPE_CHECKING. Layers, lowest
first: models know nothing; adapters wrap one AWS service or the process around them;
logic plans a run and sweeps a segment; the two handlers are the Lambda entry points.
The harness (operator CLI, local emulators, chaos, bench, provisioning) sits beside the
handlers: it may use logic, adapters and models, and the functions never import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("scavenger", "planner", "worker")
HANDLERS = ("planner.handler", "worker.handler")
ORDER = {"models": 0, "adapters": 1, "logic": 2, "handlers": 3, "harness": 3}

LAYERS = {
    "models": [
        "scavenger",
        "scavenger.budget",
        "scavenger.config",
        "scavenger.cost",
        "scavenger.errors",
        "scavenger.expiry",
        "scavenger.expression",
        "scavenger.message",
        "scavenger.records",
        "scavenger.schema",
        "scavenger.settings",
        "scavenger.sizing",
    ],
    "adapters": [
        "scavenger.aws",
        "scavenger.dlq",
        "scavenger.events",
        "scavenger.ledger",
        "scavenger.ledger_planning",
        "scavenger.ledger_requeue",
        "scavenger.ledger_store",
        "scavenger.observability",
        "scavenger.queue",
        "scavenger.retry",
        "scavenger.runtime",
        "scavenger.table",
    ],
    "logic": [
        "scavenger.batch",
        "scavenger.pacing",
        "scavenger.plan",
        "scavenger.sweep",
        "scavenger.sweep_message",
    ],
    "handlers": ["planner", "planner.handler", "worker", "worker.handler"],
    # The old import path of the CLI, a one-line re-export of scavenger.tools.cli.
    "harness": ["scavenger.cli"],
}
# The harness's own tree: every module under it is harness, a new one too.
HARNESS_PACKAGES = ("scavenger.tools",)


def module_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(source: str) -> list[str]:
    """Every absolute import in the source, wherever it stands; ``from a import b``
    gives ``a`` and ``a.b`` (b may be a module)."""
    targets: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets.append(node.module)
            targets.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return targets


def import_graph() -> dict[str, set[str]]:
    files = module_files()

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = imported_names(path.read_text(encoding="utf-8"))
        graph[name] = {
            found
            for target in targets
            if target.split(".")[0] in PACKAGES
            and (found := resolve(target)) is not None
            and found != name
        }
    return graph


def layer_of(module: str) -> str | None:
    for layer, modules in LAYERS.items():
        if module in modules:
            return layer
    if any(module == p or module.startswith(p + ".") for p in HARNESS_PACKAGES):
        return "harness"
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def reachable(graph: dict[str, set[str]], roots: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_imports_are_read_wherever_they_stand() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import scavenger.a\n"
        "if TYPE_CHECKING:\n    from scavenger.b import C\n"
        "def f():\n    from scavenger import d\n    import worker.e as e\n"
    )
    assert set(imported_names(source)) >= {
        "scavenger.a",
        "scavenger.b",
        "scavenger.b.C",
        "scavenger.d",
        "worker.e",
    }


def test_the_graph_holds_the_handlers(graph: dict[str, set[str]]) -> None:
    assert "scavenger.batch" in graph["worker.handler"]
    assert "scavenger.plan" in graph["planner.handler"]


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_every_module_is_placed_in_a_layer(graph: dict[str, set[str]]) -> None:
    unplaced = sorted(module for module in graph if layer_of(module) is None)
    assert unplaced == [], "place each new module in LAYERS of tests/unit/test_layers.py"


def test_imports_go_down_the_layers(graph: dict[str, set[str]]) -> None:
    upward = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if ORDER[layer_of(target) or "harness"] > ORDER[layer_of(module) or "harness"]
    ]
    assert upward == []


def test_nothing_imports_the_handlers(graph: dict[str, set[str]]) -> None:
    importers = sorted(module for module, targets in graph.items() if targets & set(HANDLERS))
    assert importers == []


def test_the_functions_never_import_the_harness(graph: dict[str, set[str]]) -> None:
    runtime = reachable(graph, HANDLERS)
    assert sorted(m for m in runtime if layer_of(m) == "harness") == []
    # and the harness is not reached sideways from any module of the runtime layers
    below = [m for m in graph if layer_of(m) in {"models", "adapters", "logic"}]
    assert sorted(f"{m} -> {t}" for m in below for t in graph[m] if layer_of(t) == "harness") == []


def test_the_local_function_host_imports_no_harness_that_plugs_into_it(
    graph: dict[str, set[str]],
) -> None:
    host = reachable(graph, ("scavenger.tools.local.function",))
    assert sorted(m for m in host if m.startswith("scavenger.tools.local.chaos")) == []
