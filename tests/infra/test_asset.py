"""The Lambda asset holds what the two handlers import and their dependencies, nothing else,
and both handlers answer an event in a clean interpreter that has only the asset and what the
Lambda Python runtime provides."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.bundling import (
    PACKAGES,
    PipBundling,
    handler_modules,
    requirement_name,
    runtime_requirements,
)
from tests.infra.conftest import REPO_ROOT

pytestmark = pytest.mark.infra

# What the Lambda Python runtime ships besides the standard library: the AWS SDK and its deps.
LAMBDA_RUNTIME_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "jmespath",
    "s3transfer",
    "python-dateutil",
    "six",
    "urllib3",
)
# The harness's tree, and the CLI's old import path that re-exports it.
HARNESS = ("scavenger/tools/", "scavenger/cli.py")
DRIVER = Path(__file__).with_name("asset_driver.py")


def top_level_entries(distribution: str) -> set[str]:
    """The top-level files and directories a distribution installs into site-packages."""
    files = metadata.distribution(distribution).files or []
    return {
        file.parts[0]
        for file in files
        if file.parts[0] not in ("..", "__pycache__") and not file.parts[0].endswith(".pth")
    }


def install_offline(distribution: str, target: Path) -> None:
    """Copy an installed distribution into ``target`` as ``pip install --target`` lays it out
    (the asset's dependencies are pure Python at the pinned versions the venv holds)."""
    site = Path(str(metadata.distribution(distribution).locate_file("")))
    for entry in top_level_entries(distribution):
        source = site / entry
        if source.is_dir():
            shutil.copytree(
                source, target / entry, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copyfile(source, target / entry)


class OfflineBundling(PipBundling):
    """`cdk synth`'s bundling with its pip step done from the installed distributions."""

    def install_dependencies(self, output_dir: str) -> None:
        for distribution in with_dependencies(requirement_name(r) for r in self.requirements):
            install_offline(distribution, Path(output_dir))


def with_dependencies(names: Iterable[str]) -> set[str]:
    """The distributions and everything they require (no extras), as pip resolves them."""
    found: set[str] = set()
    pending = list(names)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        found.add(name)
        for line in metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("asset")
    bundling = OfflineBundling(
        root=REPO_ROOT,
        requirements=runtime_requirements(REPO_ROOT / "pyproject.toml"),
        python_version="3.14",
    )
    assert bundling.try_bundle(str(output), cdk.BundlingOptions(image=cdk.DockerImage("x")))
    return output


@pytest.fixture(scope="module")
def lambda_runtime_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only what the Lambda Python runtime adds to the standard library."""
    runtime = tmp_path_factory.mktemp("lambda-runtime")
    site = Path(str(metadata.distribution("boto3").locate_file("")))
    for distribution in LAMBDA_RUNTIME_DISTRIBUTIONS:
        for entry in top_level_entries(distribution):
            (runtime / entry).symlink_to(site / entry)
    return runtime


def first_party_files(asset: Path) -> list[str]:
    return sorted(
        str(path.relative_to(asset))
        for package in PACKAGES
        for path in (asset / package).rglob("*")
        if path.is_file()
    )


def test_the_asset_holds_exactly_the_modules_the_handlers_import(asset: Path) -> None:
    expected = sorted(
        str(path.relative_to(REPO_ROOT)) for path in handler_modules(REPO_ROOT).values()
    )
    assert first_party_files(asset) == expected
    assert {"planner/handler.py", "worker/handler.py", "scavenger/sweep.py"} <= set(expected)


def test_the_asset_holds_no_javascript_and_no_harness(asset: Path) -> None:
    files = [str(path.relative_to(asset)) for path in asset.rglob("*") if path.is_file()]
    assert not [name for name in files if name.endswith((".js", ".mjs", ".ts"))]
    assert not [name for name in files if "node_modules" in name]
    assert not [name for name in files if name.startswith(HARNESS)]
    assert not [name for name in files if name.endswith(".pyc")]


def test_the_import_graph_follows_lazy_imports_and_skips_type_checking_ones(
    tmp_path: Path,
) -> None:
    (tmp_path / "planner").mkdir()
    (tmp_path / "scavenger" / "tools" / "local").mkdir(parents=True)
    for package in ("planner", "scavenger", "scavenger/tools", "scavenger/tools/local"):
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "planner" / "handler.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from scavenger.tools import cli\n"
        "def handler(event, context):\n    from scavenger.tools.local import chaos\n"
    )
    (tmp_path / "scavenger" / "tools" / "cli.py").write_text("")
    (tmp_path / "scavenger" / "tools" / "local" / "chaos.py").write_text("from . import fleet\n")
    (tmp_path / "scavenger" / "tools" / "local" / "fleet.py").write_text("")

    modules = handler_modules(tmp_path, ["planner.handler"])

    assert sorted(modules) == [
        "planner",
        "planner.handler",
        "scavenger",
        "scavenger.tools",
        "scavenger.tools.local",
        "scavenger.tools.local.chaos",
        "scavenger.tools.local.fleet",
    ]


def imported_top_levels(path: Path) -> set[str]:
    """What the module imports when it runs: ``if TYPE_CHECKING:`` blocks (the
    boto3-stubs client types) are for mypy only and never run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_of_ours_imports_only_the_asset_the_runtime_or_the_stdlib(
    asset: Path, lambda_runtime_packages: Path
) -> None:
    available = (
        set(sys.stdlib_module_names)
        | {path.name.removesuffix(".py") for path in asset.iterdir()}
        | {path.name.removesuffix(".py") for path in lambda_runtime_packages.iterdir()}
    )
    missing = {
        str(path.relative_to(asset)): sorted(imported_top_levels(path) - available)
        for package in PACKAGES
        for path in (asset / package).rglob("*.py")
    }
    assert {name: found for name, found in missing.items() if found} == {}


def test_both_handlers_answer_an_event_in_a_clean_interpreter(
    asset: Path, lambda_runtime_packages: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(DRIVER), str(asset), str(lambda_runtime_packages)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=asset,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    # The interpreter sees the asset and the runtime only: the harness and dev tools are absent.
    assert answer["unavailable"] == [
        "moto",
        "rich",
        "pytest",
        "aws_cdk",
        "scavenger.tools.cli",
        "scavenger.tools.local",
    ]
    assert not [path for path in answer["path"] if "site-packages" in path]
    (run,) = answer["planner"]["runs"]
    assert (run["sweep"], run["started"], run["segments"]) == ("stale", True, 2)
    assert "SendMessageBatch" in answer["calls"]
    assert answer["worker"] == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    assert not [name for name in answer["first_party_loaded"] if name.startswith(HARNESS)]
