"""The CDK app that deploys Scavenger: queues, ledger, planner and worker functions, alarms."""
