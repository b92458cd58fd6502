"""One synthesized Scavenger stack per session (bundling skipped, cdk-nag on), plus one with
every limit changed, so the tests read templates instead of synthesizing their own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.stack import build

REPO_ROOT = Path(__file__).resolve().parents[2]
SWEEPS_CONFIG = Path(__file__).with_name("scavenger.toml")
# Let the nag test read the report instead of every fixture user failing on a violation.
FAIL_ON_VALIDATION_ERRORS = "@aws-cdk/core:failSynthOnValidationErrors"
ALARM_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:scavenger-alarms"
CUSTOM_CONTEXT: Mapping[str, Any] = {
    # As `-c key=value` passes them: strings.
    "schedule": "rate(6 hours)",
    "schedule_enabled": "false",
    "worker_timeout_seconds": "900",
    "worker_memory_mb": "1769",
    "max_concurrency": "200",
    "batch_size": "3",
    "max_hops": "5000",
    "alarm_topic_arn": ALARM_TOPIC_ARN,
    "oldest_message_alarm_seconds": "7200",
    "stack_name": "ScavengerCustom",
}


@dataclass(frozen=True)
class Synthesized:
    """A synthesized stack: its template for assertions and the files `cdk synth` writes."""

    template: Template
    template_path: Path
    validation_report: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template.to_json()["Resources"])


def cdk_json_context() -> dict[str, Any]:
    """The feature flags and settings the CLI would pass, so tests synthesize the same app."""
    return dict(json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"])


def synthesize(outdir: Path, context: Mapping[str, Any]) -> Synthesized:
    app = cdk.App(
        outdir=str(outdir),
        context={
            **cdk_json_context(),
            "config": str(SWEEPS_CONFIG),
            "skip_bundling": True,
            FAIL_ON_VALIDATION_ERRORS: False,
            **context,
        },
    )
    stack = build(app)
    assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesized(
        template=Template.from_json(artifact.template),
        template_path=Path(artifact.template_full_path),
        validation_report=report,
    )


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk-default"), {})


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Template:
    return synthesized.template


@pytest.fixture(scope="session")
def custom_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return synthesize(tmp_path_factory.mktemp("cdk-custom"), CUSTOM_CONTEXT).template
