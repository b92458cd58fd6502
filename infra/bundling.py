"""The one Lambda code asset: what the two handlers import, plus their runtime dependencies.

Only the first-party modules reachable by import from ``planner.handler`` and ``worker.handler``
are copied (the operator CLI, the local fleet, chaos and bench stay out), so what Lambda loads
is what the handlers use. Dependencies are installed by pip for the Lambda platform (manylinux
wheels only) straight into the asset directory, so building the asset needs no Docker. Synth
can skip bundling altogether (context ``skip_bundling``), which tests and offline checks do.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

PACKAGES = ("planner", "worker", "scavenger")
HANDLER_MODULES = ("planner.handler", "worker.handler")
STATIC_SUFFIXES = frozenset({".js", ".mjs", ".css", ".map", ".html"})
LAMBDA_PLATFORM = "manylinux2014_x86_64"
# The Lambda Python runtime ships boto3 and botocore; everything else goes into the asset.
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore"})
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_name(requirement: str) -> str:
    match = REQUIREMENT_NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def runtime_requirements(pyproject: Path) -> tuple[str, ...]:
    """The project's runtime dependencies, pinned to the versions the dev extra tests with."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    pins = {
        requirement_name(requirement): requirement
        for requirement in project.get("optional-dependencies", {}).get("dev", [])
        if "==" in requirement
    }
    return tuple(
        pins.get(requirement_name(requirement), requirement)
        for requirement in project["dependencies"]
        if requirement_name(requirement) not in PROVIDED_BY_RUNTIME
    )


def prune_static_files(directory: Path) -> list[Path]:
    """Remove the web assets some dependencies carry (Powertools' Swagger UI: JavaScript and
    CSS the handlers never load); returns what was removed."""
    removed = [path for path in directory.rglob("*") if path.suffix in STATIC_SUFFIXES]
    for path in removed:
        path.unlink()
    return removed


def module_file(root: Path, module: str) -> Path | None:
    """The first-party source file of ``module`` under ``root``, or None if it is not one."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement in ``tree`` may load (lazy imports included;
    ``if TYPE_CHECKING:`` blocks excluded, they never run)."""
    names: set[str] = set()
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def handler_modules(root: Path, entry_points: Sequence[str] = HANDLER_MODULES) -> dict[str, Path]:
    """The first-party modules the handlers import at run time, directly or not, with the
    packages that hold them: module name -> source file."""
    found: dict[str, Path] = {}
    pending = list(entry_points)
    while pending:
        module = pending.pop()
        if module in found:
            continue
        path = module_file(root, module)
        if path is None:
            continue
        found[module] = path
        parts = module.split(".")
        pending.extend(".".join(parts[:depth]) for depth in range(1, len(parts)))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        pending.extend(_imported_names(tree, module, path.name == "__init__.py"))
    return dict(sorted(found.items()))


@jsii.implements(cdk.ILocalBundling)
class PipBundling:
    """Local bundling: ``pip install --target`` for the Lambda platform, then copy the modules
    the handlers import (``handler_modules``)."""

    def __init__(self, *, root: Path, requirements: Sequence[str], python_version: str) -> None:
        self.root = root
        self.requirements = tuple(requirements)
        self.python_version = python_version

    def pip_command(self, output_dir: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            output_dir,
            "--platform",
            LAMBDA_PLATFORM,
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--only-binary=:all:",
            *self.requirements,
        ]

    def install_dependencies(self, output_dir: str) -> None:
        """The pip step (tests swap it for a copy of the installed wheels, to stay offline)."""
        if not self.requirements:
            return
        try:
            subprocess.run(self.pip_command(output_dir), check=True)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(
                f"pip could not install the Lambda dependencies {list(self.requirements)} "
                f"for {LAMBDA_PLATFORM} (exit {exc.returncode})"
            ) from exc

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        """Build the asset in ``output_dir``; True tells CDK not to fall back to Docker.

        jsii passes the options as one positional struct, not as the keyword arguments that the
        generated ``ILocalBundling`` protocol declares.
        """
        del options
        self.install_dependencies(output_dir)
        prune_static_files(Path(output_dir))
        for path in handler_modules(self.root).values():
            target = Path(output_dir) / path.relative_to(self.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return True


def lambda_code(*, root: Path, runtime: lambda_.Runtime) -> lambda_.Code:
    """One asset for both functions; its hash is that of the bundled output."""
    python_version = runtime.name.removeprefix("python")
    return lambda_.Code.from_asset(
        str(root),
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=runtime.bundling_image,
            local=PipBundling(  # type: ignore[arg-type]  # see try_bundle
                root=root,
                requirements=runtime_requirements(root / "pyproject.toml"),
                python_version=python_version,
            ),
        ),
    )
