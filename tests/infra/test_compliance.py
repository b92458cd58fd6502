"""cdk-nag (AwsSolutions) and cfn-lint both pass on the synthesized template."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs

from infra.stack import add_compliance_checks
from tests.infra.conftest import REPO_ROOT, Synthesized
from tests.infra.helpers import cfn_lint

pytestmark = pytest.mark.infra


def test_cdk_nag_finds_nothing_unacknowledged(synthesized: Synthesized) -> None:
    violations = [
        f"{violation['ruleName']} ({violation['severity']}): "
        + ", ".join(c["constructPath"] for c in violation["violatingConstructs"])
        for report in synthesized.validation_report.get("pluginReports", [])
        for violation in report.get("violations", [])
    ]
    assert violations == []


def test_cdk_nag_fails_the_synth_of_a_non_compliant_stack(tmp_path: Path) -> None:
    """Guards the test above: the checks are really registered and really fail a synth."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "NonCompliant")
    sqs.Queue(stack, "PlainQueue")
    add_compliance_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for r in report["pluginReports"] for v in r["violations"]}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules


def test_cfn_lint_passes_with_the_repo_config(synthesized: Synthesized) -> None:
    result = cfn_lint(synthesized.template_path, REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
