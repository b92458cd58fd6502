"""Sweep configurations as tests write them (the raw form scavenger.config parses), and
DESIGN.md's segment message."""

from __future__ import annotations

from typing import Any

# The seeded tables' `where`: Completed = 1, as a number or as a string.
COMPLETED: dict[str, Any] = {
    "where": "#c IN (:n1, :s1)",
    "names": {"#c": "Completed"},
    "values": {":n1": 1, ":s1": "1"},
}


def sweep_spec(
    name: str = "sweep", table: str = "Swept", *, completed: bool = False, **fields: Any
) -> dict[str, Any]:
    """A sweep of ``table`` by its ISO-8601 ``ts`` older than 48 h; with ``completed``,
    of the items whose Completed is 1 alone; ``fields`` add to or override the rest."""
    spec: dict[str, Any] = {
        "name": name,
        "table": table,
        "age_attribute": "ts",
        "age_format": "iso8601",
        "max_age": "48h",
    }
    return spec | (COMPLETED if completed else {}) | fields


# DESIGN.md's example sweep, every field given.
DOCUMENTED: dict[str, Any] = sweep_spec(
    "stale-workers",
    "Workers",
    completed=True,
    age_attribute="StartExecutionTime",
    segments="auto",
    dry_run=False,
    deletes_per_second=0,
)

# DESIGN.md's segment message body.
DOCUMENTED_MESSAGE: dict[str, Any] = {
    "v": 1,
    "run_id": "20261123T020000Z-3f9c",
    "sweep": "stale-workers",
    "table": "Workers",
    "segment": 7,
    "total_segments": 64,
    "cutoff": "2026-11-21T02:00:00Z",
    "cursor": None,
    "hop": 0,
    "dry_run": False,
}
