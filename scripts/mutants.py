"""Break each invariant of DESIGN.md on purpose and check that its named test notices.

Every ``tests/mutants/<N>-<name>.patch`` is a ``git apply``-able break of invariant N
in the product, its first line ``Mutant: <what it breaks>``. For each one this
script applies it to a throwaway clone (never to the working tree), runs
``tests/integration/test_invariants.py`` (the tests named ``test_invariant_N_*``,
or the whole file with ``--full``) and the existing tests that guard the same
invariant, and reports the tests that fail. A mutant is *killed* when a
``test_invariant_N_*`` test fails, *survived* otherwise. The unmutated clone is
run first: it must pass.

Run it from the repository root (it takes minutes: one test run per mutant, so it
is not part of ``make test``)::

    .venv/bin/python scripts/mutants.py                 # every mutant
    .venv/bin/python scripts/mutants.py 3-redrive-deletes-before-sending
    .venv/bin/python scripts/mutants.py --full --markdown table.md

The clone is taken from HEAD, with the working tree's ``tests/`` copied over it.
Exit status: 0 if every mutant was killed, 1 otherwise, 2 if a patch no longer
applies or the unmutated clone fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "tests" / "mutants"
INVARIANTS = "tests/integration/test_invariants.py"
# The existing tests that guard each invariant, run against its mutants as well.
EXISTING: dict[str, list[str]] = {
    "1": ["tests/integration/test_sweep_faults.py", "tests/unit/test_expiry.py"],
    "2": [
        "tests/integration/test_sweep_faults.py",
        "tests/integration/test_ops.py",
        "tests/integration/test_halt.py",
    ],
    "3": [
        "tests/integration/test_sweep_faults.py",
        "tests/integration/test_ops.py",
        "tests/integration/test_halt.py",
    ],
    "4": ["tests/integration/test_sweep_faults.py", "tests/integration/test_ops.py"],
    "5": ["tests/integration/test_sweep_faults.py", "tests/unit/test_retry_and_pacing.py"],
}
# With --full, the slow hypothesis property test too.
FULL_EXTRA = ["tests/integration/test_sweep_properties.py"]


@dataclass
class Result:
    name: str
    change: str
    failed: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def invariant(self) -> str:
        return self.name.split("-", 1)[0]

    @property
    def killed(self) -> bool:
        prefix = f"test_invariant_{self.invariant}_"
        return any(test.split("::")[-1].startswith(prefix) for test in self.failed)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def describe(patch: Path) -> str:
    """The patch's ``Mutant:`` line (the preamble ``git apply`` ignores), and its file."""
    text = patch.read_text()
    summary = next(
        (
            line.removeprefix("Mutant:").strip()
            for line in text.splitlines()
            if line[:7] == "Mutant:"
        ),
        patch.stem,
    )
    files = [line.removeprefix("+++ b/") for line in text.splitlines() if line[:6] == "+++ b/"]
    return f"{summary} ({', '.join(files)})"


def run_tests(clone: Path, paths: list[str], keyword: str | None) -> list[str]:
    """Run pytest in the clone; the node ids of the tests that failed or errored."""
    report = clone / "report.xml"
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "--timeout=180", f"--junitxml={report}", *paths,
    ]  # fmt: skip
    if keyword:
        command += ["-k", keyword]
    environment = dict(os.environ, PYTHONPATH=str(clone), SCAVENGER_MUTANTS="1")
    subprocess.run(command, cwd=clone, env=environment, capture_output=True, text=True)
    if not report.exists():
        return ["<pytest did not run>"]
    failed = []
    for case in ElementTree.parse(report).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            module = case.get("classname", "").rsplit(".", 1)[-1]
            failed.append(f"{module}::{case.get('name')}")
    report.unlink()
    return failed


def make_clone(workdir: Path) -> Path:
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    shutil.rmtree(clone / "tests")
    shutil.copytree(ROOT / "tests", clone / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    # The emulators' npm packages (DynamoDB Local, dynalite) are not in git: the clone
    # uses the working tree's install.
    node = Path("scavenger", "tools", "local", "node", "node_modules")
    if (ROOT / node).is_dir():
        (clone / node).symlink_to((ROOT / node).resolve())
    return clone


def table(results: list[Result]) -> str:
    lines = [
        "| mutant | change | killed | failing tests |",
        "| --- | --- | --- | --- |",
    ]
    for result in results:
        status = "error" if result.error else ("yes" if result.killed else "**SURVIVED**")
        tests = result.error or "<br>".join(f"`{test}`" for test in result.failed) or "none"
        lines.append(f"| {result.name} | {result.change} | {status} | {tests} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mutants", nargs="*", help="patch names (default: all)")
    parser.add_argument("--full", action="store_true", help="whole invariant file + properties")
    parser.add_argument("--markdown", type=Path, help="also write the results table here")
    args = parser.parse_args(argv)
    patches = sorted(MUTANTS.glob("*.patch"))
    if args.mutants:
        patches = [p for p in patches if p.stem in args.mutants]
    with tempfile.TemporaryDirectory(prefix="scavenger-mutants-") as workdir:
        clone = make_clone(Path(workdir))
        print("unmutated clone ...", flush=True)
        baseline = run_tests(clone, [INVARIANTS], None)
        if baseline:
            print(f"the unmutated clone fails: {baseline}", file=sys.stderr)
            return 2
        results: list[Result] = []
        for patch in patches:
            result = Result(patch.stem, describe(patch))
            try:
                git("apply", str(patch), cwd=clone)
            except subprocess.CalledProcessError as exc:
                result.error = f"patch does not apply: {exc.stderr.strip()}"
                results.append(result)
                print(f"{patch.stem}: {result.error}", flush=True)
                continue
            try:
                keyword = None if args.full else f"invariant_{result.invariant}_"
                failed = run_tests(clone, [INVARIANTS], keyword)
                existing = EXISTING.get(result.invariant, []) + (FULL_EXTRA if args.full else [])
                failed += run_tests(clone, existing, None)
                result.failed = failed
            finally:
                git("apply", "-R", str(patch), cwd=clone)
            results.append(result)
            verdict = "killed" if result.killed else "SURVIVED"
            print(f"{patch.stem}: {verdict} ({len(result.failed)} failing)", flush=True)
    markdown = table(results)
    print(markdown)
    if args.markdown:
        args.markdown.write_text(markdown + "\n")
    if any(result.error for result in results):
        return 2
    return 0 if all(result.killed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
