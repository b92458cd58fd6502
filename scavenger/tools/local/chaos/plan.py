"""The fault plan: every rate, count and budget of a chaos run, drawn from its seed.

Each decision stream (every container by its start order, the fleet, the writer,
the poison) draws from its own sub-seed, so a rerun draws the same plan and streams.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

KILL_POINTS = ("mid_page", "after_delete", "after_checkpoint", "after_continuation")
SERVICES = ("dynamodb", "sqs")


def sub_seed(seed: int, *parts: object) -> int:
    """A seed for one decision stream, derived from the run's seed and the stream's name."""
    text = "\x1f".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class ChaosPlan:
    """Every rate, count and budget of one chaos run, drawn from its seed.

    Rates are per call (kills: per call at that point; errors: per attempt of a
    worker's call), per succeeded record (duplicate, replay), or a share of the
    expired items (refresh).
    """

    seed: int
    kill: dict[str, float]
    max_kills: int
    throttle: dict[str, float]
    error_500: dict[str, float]
    error_500_after_send: dict[str, float]
    poller_throttle: float
    duplicate: float
    replay: float
    refresh_share: float
    inserts_fresh: int
    inserts_expired: int
    poison: int

    @classmethod
    def from_seed(cls, seed: int, items: int, error_scale: float = 1.0) -> ChaosPlan:
        """``error_scale`` multiplies the throttle and 500 rates: botocore backs off up
        to a second per throttle (standard mode), which dominates a small run's time."""
        rng = random.Random(sub_seed(seed, "plan"))

        def rate(low: float, high: float) -> float:
            return round(rng.uniform(low, high), 4)

        per_service = {
            service: tuple(
                round(error_scale * value, 4)
                for value in (rate(0.01, 0.08), rate(0.0, 0.02), rate(0.0, 0.02))
            )
            for service in SERVICES
        }
        kills = (rate(0.0, 0.006), rate(0.0, 0.006), rate(0.0, 0.04), rate(0.05, 0.4))
        return cls(
            seed=seed,
            kill=dict(zip(KILL_POINTS, kills, strict=True)),
            max_kills=max(2, min(30, items // 150)),
            throttle={service: values[0] for service, values in per_service.items()},
            error_500={service: values[1] for service, values in per_service.items()},
            error_500_after_send={service: values[2] for service, values in per_service.items()},
            poller_throttle=round(error_scale * rate(0.0, 0.05), 4),
            duplicate=rate(0.03, 0.25),
            replay=rate(0.03, 0.25),
            refresh_share=rate(0.02, 0.08),
            inserts_fresh=max(1, round(items * rate(0.005, 0.02))),
            inserts_expired=max(1, round(items * rate(0.005, 0.02))),
            poison=rng.randint(1, 3),
        )

    def quiet(self) -> ChaosPlan:
        """The same plan with every fault off (the recovery rounds)."""
        return replace(
            self,
            kill=dict.fromkeys(self.kill, 0.0),
            max_kills=0,
            throttle=dict.fromkeys(SERVICES, 0.0),
            error_500=dict.fromkeys(SERVICES, 0.0),
            error_500_after_send=dict.fromkeys(SERVICES, 0.0),
            poller_throttle=0.0,
            duplicate=0.0,
            replay=0.0,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChaosPlan:
        return cls(**data)


def poison_bodies(plan: ChaosPlan) -> list[str]:
    """Bodies that are not segment messages, each unique to the run."""
    rng = random.Random(sub_seed(plan.seed, "poison"))
    shapes = (
        "not JSON at all #{n}",
        '{{"v": 1, "chaos": {n}}}',
        "[{n}]",
        '{{"v": 99, "run_id": "poison-{n}", "sweep": "x", "table": "x", "segment": 0, '
        '"total_segments": 1, "cutoff": "2020-01-01T00:00:00Z", "cursor": null, "hop": 0, '
        '"dry_run": false}}',
    )
    return [rng.choice(shapes).format(n=f"{plan.seed}-{number}") for number in range(plan.poison)]
