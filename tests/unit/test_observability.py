"""The logger and metrics settings come from the environment at first use (a cold
start), not when the module is imported."""

from __future__ import annotations

import subprocess
import sys

LATE = """
import os
import scavenger.observability as observability
import scavenger.retry  # an importer of the logger does not resolve it
os.environ["POWERTOOLS_SERVICE_NAME"] = "late-service"
os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "LateNamespace"
print(observability.service_name(), observability.metrics_namespace(),
      observability.logger.service)
"""


def test_environment_set_after_import_is_what_the_logger_and_metrics_use():
    env_free = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [sys.executable, "-c", LATE], capture_output=True, text=True, env=env_free, check=True
    )

    assert result.stdout.split() == ["late-service", "LateNamespace", "late-service"]


def test_defaults_hold_without_the_variables():
    code = "import scavenger.observability as o; print(o.service_name(), o.metrics_namespace())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={}, check=True
    )

    assert result.stdout.split() == ["scavenger", "Scavenger"]
