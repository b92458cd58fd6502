"""checkov, a scanner independent of cdk-nag, on the synthesized template: nothing fails, and
every suppression carries its reason in the template (infra/checkov.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import REPO_ROOT, Synthesized

pytestmark = pytest.mark.infra

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
# A queue without encryption: checkov must flag it, or the scan proves nothing.
NON_COMPLIANT = {
    "Resources": {"PlainQueue": {"Type": "AWS::SQS::Queue", "Properties": {}}},
}


def pinned_version() -> str:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^CHECKOV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert match, "the Makefile pins CHECKOV_VERSION"
    return match.group(1)


@pytest.fixture(scope="module")
def report(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make setup` installs checkov"
    plain = tmp_path_factory.mktemp("checkov") / "NonCompliant.template.json"
    plain.write_text(json.dumps(NON_COMPLIANT), encoding="utf-8")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
            "-f",
            str(synthesized.template_path),
            "-f",
            str(plain),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Exit 1 means failed checks (the non-compliant template's); anything else is an error.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def by_file(checks: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    return [check for check in checks if Path(check["file_abs_path"]) == path.resolve()]


def test_checkov_is_the_pinned_version(report: dict[str, Any]) -> None:
    assert report["summary"]["checkov_version"] == pinned_version()
    assert report["summary"]["parsing_errors"] == 0


def test_checkov_finds_nothing_in_the_template(
    report: dict[str, Any], synthesized: Synthesized
) -> None:
    results = report["results"]
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in by_file(results["failed_checks"], synthesized.template_path)
    ]
    assert failed == []
    assert len(by_file(results["passed_checks"], synthesized.template_path)) >= 40


def test_every_suppression_gives_its_reason(
    report: dict[str, Any], synthesized: Synthesized
) -> None:
    skipped = by_file(report["results"]["skipped_checks"], synthesized.template_path)
    assert skipped
    for check in skipped:
        comment = check["check_result"].get("suppress_comment", "")
        assert len(comment) > 40, (check["check_id"], check["resource"], comment)


def test_checkov_does_flag_a_non_compliant_template(report: dict[str, Any]) -> None:
    failed = {
        check["check_id"]
        for check in report["results"]["failed_checks"]
        if check["file_abs_path"].endswith("NonCompliant.template.json")
    }
    assert "CKV_AWS_27" in failed
