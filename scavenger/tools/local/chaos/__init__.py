"""Chaos mode for the local fleet: faults at random, reproducible from a seed, then proof.

``scavenger demo --chaos --seed S`` (and the chaos tests) run the demo's sweep
while injecting, from outside the product:

- kills of worker containers mid-invocation (SIGKILL; a :class:`SimulatedKill`
  when the container is a thread): before a delete (mid-page), after a delete
  and before its checkpoint, after a checkpoint, after sending a continuation
  and before the record is acknowledged;
- throttling and HTTP 500s on the workers' DynamoDB and SQS calls, answered
  before the request is sent (nothing happened), and 500s answered after it was
  sent (it did happen: botocore and the worker retry something already done);
  throttling of the fleet's own SQS calls;
- duplicate deliveries (a succeeded record left on the queue) and out-of-order
  redelivery (an older hop of a segment sent again after a newer one);
- a concurrent writer that refreshes expired items and inserts new ones,
  recording what it changed and when;
- poison messages.

The faults come from botocore event hooks installed in each container through the
local function host's hook (a :class:`~scavenger.tools.local.function.HandlerHook` naming
:func:`~scavenger.tools.local.chaos.hosts.container_handler`) and from the fleet's
:class:`~scavenger.tools.local.fleet.FleetHooks`; worker/ and planner/ know nothing of
them, and the host imports nothing of chaos. Then the run is driven to completion (the
product's redrive, then the fleet again, without faults) and checked against
what was seeded and what the writer did.

Reproducibility: one ``random.Random`` per seed draws the plan (rates, counts,
budgets) and the data; each decision stream (every container by its start
order, the fleet, the writer, the poison) has its own sub-seed derived from
the seed. A rerun draws the same plan, data and streams; which record meets a
given decision still depends on the timing of a concurrent fleet.

The package, one job a module (a new fault is one small module):

- :mod:`.plan`: the fault plan and the poison, drawn from the seed;
- :mod:`.books`: the fault journal, and the deletes the ledger cannot have counted;
- :mod:`.calls`, :mod:`.responses`, :mod:`.faults`: a container's botocore hooks;
- :mod:`.hosts`: where a container runs (a process through the host's hook, or a thread);
- :mod:`.fleet_faults`: the fleet's hooks (duplicates, replays, poller throttles);
- :mod:`.writer`: the concurrent writer;
- :mod:`.options`, :mod:`.run`, :mod:`.check`, :mod:`.report`: the run, its check
  (on one :class:`~scavenger.tools.local.chaos.check.Snapshot`) and its report.
"""

from scavenger.tools.local.chaos.books import Books, FaultJournal
from scavenger.tools.local.chaos.check import Snapshot, check
from scavenger.tools.local.chaos.fleet_faults import ChaosFleetHooks, poller_client
from scavenger.tools.local.chaos.hosts import SimulatedKill, container_handler, new_client
from scavenger.tools.local.chaos.options import (
    DEFAULT_ITEMS,
    DEFAULT_MAX_RECEIVE_COUNT,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TIMEOUT_SECONDS,
    ChaosOptions,
)
from scavenger.tools.local.chaos.plan import ChaosPlan, poison_bodies, sub_seed
from scavenger.tools.local.chaos.report import ChaosReport
from scavenger.tools.local.chaos.responses import error_response
from scavenger.tools.local.chaos.run import run_chaos
from scavenger.tools.local.chaos.writer import ConcurrentWriter, WriterChange

__all__ = [
    "DEFAULT_ITEMS",
    "DEFAULT_MAX_RECEIVE_COUNT",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TIMEOUT_SECONDS",
    "Books",
    "ChaosFleetHooks",
    "ChaosOptions",
    "ChaosPlan",
    "ChaosReport",
    "ConcurrentWriter",
    "FaultJournal",
    "SimulatedKill",
    "Snapshot",
    "WriterChange",
    "check",
    "container_handler",
    "error_response",
    "new_client",
    "poison_bodies",
    "poller_client",
    "run_chaos",
    "sub_seed",
]
