"""The one Lambda code asset: planner/, worker/ and scavenger/ plus their runtime dependencies.

Dependencies are installed by pip for the Lambda platform (manylinux wheels only) straight into
the asset directory, so building the asset needs no Docker. Synth can skip bundling altogether
(context ``skip_bundling``), which tests and offline checks do.
"""

from __future__ import annotations

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


@jsii.implements(cdk.ILocalBundling)
class PipBundling:
    """Local bundling: ``pip install --target`` for the Lambda platform, then copy the packages."""

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

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        """Build the asset in ``output_dir``; True tells CDK not to fall back to Docker.

        jsii passes the options as one positional struct, not as the keyword arguments that the
        generated ``ILocalBundling`` protocol declares.
        """
        del options
        if self.requirements:
            try:
                subprocess.run(self.pip_command(output_dir), check=True)
            except subprocess.CalledProcessError as exc:
                raise RuntimeError(
                    f"pip could not install the Lambda dependencies {list(self.requirements)} "
                    f"for {LAMBDA_PLATFORM} (exit {exc.returncode})"
                ) from exc
        for package in PACKAGES:
            shutil.copytree(
                self.root / package,
                Path(output_dir) / package,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                dirs_exist_ok=True,
            )
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
