"""The real CLI: `npx cdk synth` (pinned in package.json) works offline with no credentials."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT, SWEEPS_CONFIG

pytestmark = pytest.mark.infra


def clean_env(scratch: Path, *, path: str) -> dict[str, str]:
    """No AWS credentials anywhere (env or files), a fake region, no telemetry.

    HOME stays: jsii keeps its unpacked aws-cdk-lib there, and a cold cache costs ~40 s.
    """
    return {
        "PATH": path,
        "HOME": os.environ.get("HOME", str(scratch)),
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }


def without_network() -> list[str]:
    """Prefix that runs a command in an empty network namespace, where that is allowed."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
    return [unshare, "--net"] if probe.returncode == 0 else []


def test_npx_cdk_synth_works_offline_without_credentials(tmp_path: Path) -> None:
    npx = shutil.which("npx")
    if npx is None or shutil.which("node") is None:
        pytest.skip("node/npx is not installed; `npx cdk synth` cannot run here")
    assert (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists(), "run `make setup` (npm ci)"
    # As `make` runs it: the project's virtualenv first on PATH, so `python3` is the venv's.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    outdir = tmp_path / "cdk.out"
    command = [
        *without_network(),
        npx,
        "--no",
        "cdk",
        "synth",
        "--quiet",
        "-c",
        f"config={SWEEPS_CONFIG.relative_to(REPO_ROOT)}",
        "-c",
        "skip_bundling=true",
        "-o",
        str(outdir),
    ]
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=clean_env(tmp_path, path=path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((outdir / "Scavenger.template.json").read_text())
    assert {"QueueUrl", "DlqUrl", "LedgerTableName"} <= set(template["Outputs"])
    resource_types = {resource["Type"] for resource in template["Resources"].values()}
    assert "AWS::CDK::Metadata" not in resource_types, "versionReporting should be off"


def run_app_with_bad_sweeps(
    python: str, scratch: Path, *, path: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "infra/app.py"],
        cwd=REPO_ROOT,
        env={
            **clean_env(scratch, path=path),
            "CDK_OUTDIR": str(scratch / "out"),
            "CDK_CONTEXT_JSON": json.dumps({"sweeps": '[{"name": "Bad Name"}]'}),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_app_reports_bad_context_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    result = run_app_with_bad_sweeps(sys.executable, tmp_path, path=os.environ.get("PATH", ""))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "scavenger infra: sweep 'Bad Name': table: is required" in result.stderr


def test_app_reruns_itself_in_the_venv_when_python3_lacks_the_cdk(tmp_path: Path) -> None:
    """cdk.json says `python3 infra/app.py`; outside the venv that python3 has no aws-cdk-lib."""
    if not (REPO_ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv in the repository to re-run in")
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(
        entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry != venv_bin
    )
    python3 = shutil.which("python3", path=path)
    if python3 is None:
        pytest.skip("no python3 outside the virtualenv")
    probe = subprocess.run([python3, "-c", "import aws_cdk"], capture_output=True, check=False)
    if probe.returncode == 0:
        pytest.skip(f"{python3} has aws-cdk-lib itself; nothing to re-run")
    result = run_app_with_bad_sweeps(python3, tmp_path, path=path)
    assert result.returncode == 1, result.stderr
    assert "scavenger infra: sweep 'Bad Name': table: is required" in result.stderr
