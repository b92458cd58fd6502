"""The logic behind the operator commands (plan, status, requeue, redrive, dlq).

The command modules parse arguments and render; everything that reads or
changes the ledger and the queues lives here, over injected clients.
"""
