"""The local runtime: an AWS emulator on loopback, a Lambda-like function host, and
an SQS event source mapping that drives the real handlers (``scavenger demo``,
``scavenger work``).
"""
