"""jsii prints Node's end-of-life banner as Python byte strings (b'!!  Node 20 ...')
when aws_cdk starts it; tests/conftest.py silences it before tests/infra imports aws_cdk."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.infra.conftest import REPO_ROOT


def test_collecting_the_tests_prints_no_node_banner_bytes() -> None:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("JSII_SILENCE")
    }
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert collected.returncode == 0, collected.stdout + collected.stderr
    output = collected.stdout + collected.stderr
    assert "b'!!" not in output and "end-of-life" not in output
