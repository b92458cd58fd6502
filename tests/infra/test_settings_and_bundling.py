"""Context parsing fails fast with the key and the reason; the asset is built for Lambda."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.bundling import PACKAGES, PipBundling, runtime_requirements
from infra.settings import StackSettings
from scavenger.errors import ConfigError
from tests.infra.conftest import REPO_ROOT, SWEEPS_CONFIG
from tests.sweeps import sweep_spec

pytestmark = pytest.mark.infra

SWEEP = sweep_spec("stale-workers", "Workers", age_attribute="StartExecutionTime")


def settings_from(context: dict[str, Any]) -> StackSettings:
    return StackSettings.from_context(cdk.App(context=context).node)


def test_sweeps_may_be_given_as_a_json_string() -> None:
    settings = settings_from({"sweeps": json.dumps([SWEEP])})
    assert [(s.name, s.table) for s in settings.sweeps] == [("stale-workers", "Workers")]


def test_sweeps_may_come_from_a_config_file() -> None:
    settings = settings_from({"config": str(SWEEPS_CONFIG)})
    assert settings.tables == ("Workers", "Sessions")


def test_string_context_values_are_parsed() -> None:
    settings = settings_from(
        {"sweeps": [SWEEP], "batch_size": "4", "schedule_enabled": "false", "max_hops": 7}
    )
    assert (settings.batch_size, settings.schedule_enabled, settings.max_hops) == (4, False, 7)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"sweeps": [{**SWEEP, "age_format": "rfc822"}]}, "age_format"),
        ({"sweeps": [SWEEP, SWEEP]}, "used twice"),
        ({"sweeps": "[{"}, "sweeps: context value is not valid JSON"),
        ({"sweeps": [SWEEP], "config": "scavenger.toml"}, "not both"),
        ({"config": "/nonexistent/scavenger.toml"}, "does not exist"),
        ({"sweeps": [SWEEP], "batch_size": "11"}, "batch_size: 11 must be between 1 and 10"),
        ({"sweeps": [SWEEP], "max_concurrency": 1}, "max_concurrency: 1 must be between"),
        ({"sweeps": [SWEEP], "worker_timeout_seconds": "5m"}, "worker_timeout_seconds: must"),
        ({"sweeps": [SWEEP], "schedule": "every night"}, "schedule:"),
        ({"sweeps": [SWEEP], "schedule_enabled": "maybe"}, "schedule_enabled:"),
        ({"sweeps": [SWEEP], "alarm_topic_arn": "alarms"}, "alarm_topic_arn:"),
        ({"sweeps": [{**SWEEP, "name": f"sweep-{i}"} for i in range(40)]}, "do not fit in"),
    ],
)
def test_invalid_context_names_the_key_and_the_reason(
    context: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from(context)


def test_without_sweeps_or_a_config_file_the_error_says_what_to_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="-c config="):
        settings_from({})


def test_runtime_requirements_are_the_pinned_project_dependencies_minus_boto3() -> None:
    requirements = runtime_requirements(REPO_ROOT / "pyproject.toml")
    names = {requirement.split("==")[0] for requirement in requirements}
    assert names == {"tenacity", "aws-lambda-powertools"}
    assert all("==" in requirement for requirement in requirements)


def test_dependencies_are_installed_as_lambda_platform_wheels() -> None:
    bundling = PipBundling(root=REPO_ROOT, requirements=["tenacity==9.2.1"], python_version="3.14")
    command = bundling.pip_command("/asset")
    joined = " ".join(command)
    assert "--target /asset" in joined
    assert "--platform manylinux2014_x86_64" in joined
    assert "--python-version 3.14" in joined
    assert "--only-binary=:all:" in command
    assert command[-1] == "tenacity==9.2.1"


def test_bundling_copies_the_three_packages_without_caches(tmp_path: Path) -> None:
    bundling = PipBundling(root=REPO_ROOT, requirements=[], python_version="3.14")
    assert bundling.try_bundle(str(tmp_path), cdk.BundlingOptions(image=cdk.DockerImage("x")))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PACKAGES)
    assert (tmp_path / "planner" / "handler.py").exists()
    assert (tmp_path / "worker" / "handler.py").exists()
    assert not list(tmp_path.rglob("__pycache__"))
