"""``scavenger demo``: the whole system on one machine, checked against the seeded truth.

Seeds a table shaped like the original workload (WorkerId N, StartTime S,
StartExecutionTime ISO-8601 with mixed UTC offsets, Completed as 1 or "1", about
97.5 % expired), runs the real planner handler in a function container, runs the
fleet on the queue until the run is done, then scans what is left: an item that
was not expired but is gone is ``wrongly_deleted``; an expired one still there
is ``missed``. Both must be 0.

The package, one job a module (chaos mode, bench and ``scavenger local`` reuse its parts):

- :mod:`.seed`: the demo items, the truth about each one, and seeding the table;
- :mod:`.resources`: the table, queues and ledger, and the sweep's config;
- :mod:`.scaffold`: prepare a sweep, start its run, follow it (shared with chaos);
- :mod:`.report`: the table against the truth, and the report;
- :mod:`.options`, :mod:`.observer`, :mod:`.logs`, :mod:`.run`: the demo's run itself.
"""

from scavenger.tools.local.demo.logs import FunctionLogs
from scavenger.tools.local.demo.observer import DemoObserver, QuietObserver
from scavenger.tools.local.demo.options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_ITEMS,
    DEFAULT_TIMEOUT_SECONDS,
    DemoOptions,
)
from scavenger.tools.local.demo.report import DemoReport, remaining_keys
from scavenger.tools.local.demo.resources import (
    SWEEP_NAME,
    DemoResources,
    create_demo_table,
    create_resources,
    delete_mode_for,
    sweep_toml,
    worker_environment,
    write_sweep_config,
)
from scavenger.tools.local.demo.run import check_endpoint, run_demo
from scavenger.tools.local.demo.scaffold import (
    Prepared,
    RunMonitor,
    Setup,
    StartedRun,
    plan_run,
    prepare,
    start_run,
)
from scavenger.tools.local.demo.seed import (
    MAX_AGE,
    OFFSETS,
    SeededItem,
    check_boundary,
    iso_at_offset,
    seed_table,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_ITEMS",
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_AGE",
    "OFFSETS",
    "SWEEP_NAME",
    "DemoObserver",
    "DemoOptions",
    "DemoReport",
    "DemoResources",
    "FunctionLogs",
    "Prepared",
    "QuietObserver",
    "RunMonitor",
    "SeededItem",
    "Setup",
    "StartedRun",
    "check_boundary",
    "check_endpoint",
    "create_demo_table",
    "create_resources",
    "delete_mode_for",
    "iso_at_offset",
    "plan_run",
    "prepare",
    "remaining_keys",
    "run_demo",
    "seed_table",
    "start_run",
    "sweep_toml",
    "worker_environment",
    "write_sweep_config",
]
