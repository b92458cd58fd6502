"""Planner Lambda: a scheduled EventBridge event (all sweeps) or {"sweep", "dry_run"}."""

from __future__ import annotations

from functools import cache
from typing import Any

from planner.plan import Fleet, Planner, PlanRequest
from scavenger.ledger import Ledger
from scavenger.observability import logger
from scavenger.queue import SegmentQueue
from scavenger.runtime import Runtime, lambda_runtime


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(request_id=getattr(context, "aws_request_id", None))
    request = PlanRequest.from_event(event)
    return plan(request, lambda_runtime())


def plan(request: PlanRequest, runtime: Runtime) -> dict[str, Any]:
    sweeps = [runtime.sweep(request.sweep)] if request.sweep else list(runtime.sweeps)
    planner = Planner(
        ledger=Ledger(runtime.dynamodb, runtime.settings.ledger_table),
        queue=SegmentQueue(runtime.sqs, runtime.settings.queue_url),
        dynamodb=runtime.dynamodb,
        max_concurrency=runtime.settings.max_concurrency,
        fleet=fleet(),
    )
    return {"runs": [planner.plan(sweep, dry_run=request.dry_run).to_json() for sweep in sweeps]}


@cache
def fleet() -> Fleet:
    """The workers' timeout and MaximumConcurrency, read once per container."""
    return Fleet.from_env()
