"""Planner Lambda: a scheduled EventBridge event (all sweeps) or {"sweep", "dry_run"}."""

from __future__ import annotations

from typing import Any

from scavenger.observability import logger
from scavenger.plan import PlanRequest, plan
from scavenger.runtime import lambda_runtime


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = PlanRequest.from_event(event)
    return plan(request, lambda_runtime())
