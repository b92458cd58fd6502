"""README and docs/ stand alone: every relative link resolves to a file inside the
repository, and nothing points at a path outside it (../shared/DESIGN.md did)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_stays_in_the_repository_and_resolves() -> None:
    checked = 0
    for document in documents():
        for target in LINK.findall(document.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (document.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT), f"{document.name} links outside: {target}"
            assert path.exists(), f"{document.name} links to a missing file: {target}"
            checked += 1
    assert checked >= 2  # README → docs/DESIGN.md, and back


def test_the_design_document_holds_the_contracts() -> None:
    design = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    for heading in ("## Data flow", "## The ledger protocol", "## Invariants", "## Contracts"):
        assert heading in design
    assert "docs/DESIGN.md" in (ROOT / "README.md").read_text(encoding="utf-8")
