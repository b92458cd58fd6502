"""Names and numbers that the CDK stack, local provisioning and the runtime must agree
on: the ledger's key schema and expiry, and the segment queue's redrive policy.

A model module: it imports nothing of the project's, so infra/ can import it without the runtime.
"""

from __future__ import annotations

from typing import Final

# The ledger table: partition key run_id, sort key part, both strings.
LEDGER_PARTITION_KEY = "run_id"
LEDGER_SORT_KEY = "part"
LEDGER_KEY_TYPE: Final = "S"

# Ledger items expire by DynamoDB TTL on this attribute, this long after their write.
TTL_ATTRIBUTE = "expires_at"
LEDGER_RETENTION_DAYS = 30
LEDGER_RETENTION_SECONDS = LEDGER_RETENTION_DAYS * 86400

# A segment message that fails this many receives parks in the DLQ.
MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_DAYS = 14
