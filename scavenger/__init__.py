"""Scavenger: delete stale DynamoDB items with an SQS-fed fleet of Lambda workers."""

__version__ = "0.1.0"
