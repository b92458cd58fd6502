"""README's local walk-through, run exactly as written: the commands come from the
fenced block after ``<!-- walkthrough -->``, so the two cannot drift. Each runs in
one bash session (``eval`` and variables carry over), in an empty directory, with
the virtualenv's ``scavenger`` first on PATH; each must exit 0, and afterwards no
process the walk-through started may be left."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, pids_with_environment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARKER = "<!-- walkthrough -->"
EXIT_LINE = re.compile(r"^@@walkthrough (\d+) exit (\d+)$", re.MULTILINE)


def walkthrough_commands(readme: Path = ROOT / "README.md") -> list[str]:
    text = readme.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, f"README.md needs exactly one {MARKER} block"
    block = re.search(re.escape(MARKER) + r"\s*```(?:sh|bash|console)\n(.*?)```", text, re.DOTALL)
    assert block is not None, f"no fenced code block right after {MARKER}"
    return [
        line
        for line in block.group(1).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def walkthrough_environment(marker: str) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "SCAVENGER_")) or name == "SCAVENGER_TEST_MARKER"
    }
    bin_dir = str(Path(sys.executable).parent)
    environment["PATH"] = f"{bin_dir}{os.pathsep}{environment.get('PATH', '')}"
    environment["SCAVENGER_TEST_MARKER"] = marker  # to find every process it starts
    return environment


def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    commands = walkthrough_commands()
    assert commands[0].startswith('eval "$(scavenger local up')
    assert commands[-1].startswith("scavenger local down")
    marker = f"scavenger-walkthrough-{secrets.token_hex(6)}"
    script = "".join(
        f'{command}\necho "@@walkthrough {index} exit $?"\n'
        for index, command in enumerate(commands)
    )
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=walkthrough_environment(marker),
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        # Whatever happened, nothing the walk-through started may outlive the test.
        subprocess.run(
            [sys.executable, "-m", "scavenger.tools.cli", "local", "down"],
            cwd=tmp_path,
            env=walkthrough_environment(marker),
            capture_output=True,
            timeout=60,
        )
    seconds = time.monotonic() - started

    exits = {int(index): int(code) for index, code in EXIT_LINE.findall(result.stdout)}
    assert sorted(exits) == list(range(len(commands))), result.stdout + result.stderr
    failed = [(commands[index], code) for index, code in exits.items() if code != 0]
    assert failed == [], result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    # `scavenger status > status.txt`: the table is in the file, nothing else.
    table = (tmp_path / "status.txt").read_text(encoding="utf-8")
    assert "recent runs" in table and "stale-workers" in table and "done" in table
    # `local down` removed what `local up` wrote, and stopped what it started.
    assert not (tmp_path / ".scavenger-local.json").exists()
    assert not (tmp_path / "scavenger.toml").exists()
    assert pids_with_environment(marker) == set()
    assert seconds < 120, f"the walk-through took {seconds:.0f}s"
