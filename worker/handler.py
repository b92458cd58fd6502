"""Worker Lambda: an SQS FIFO batch of segment messages (scavenger/batch.py handles it)."""

from __future__ import annotations

from typing import Any

from scavenger.batch import handle
from scavenger.observability import logger, metrics
from scavenger.runtime import lambda_runtime


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, lambda_runtime())
