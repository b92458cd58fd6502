"""Worker Lambda: an SQS FIFO batch of segment messages (scavenger/batch.py handles it)."""

from __future__ import annotations

from typing import Any

from scavenger.batch import handle
from scavenger.runtime import lambda_runtime


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, lambda_runtime())
