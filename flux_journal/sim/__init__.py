"""A simulated Flux instance for journal consumers.

``flux_journal.sim`` stands in for a Flux broker wherever flux-journal
runs without one: tests, benchmarks and the command line's ``--sim`` and
``--replay``.  It offers the slice of ``flux.Flux`` that journal
consumers use and serves ``job-manager.events-journal`` and
``resource.journal`` the way flux-core's job-manager (journal.c) and
resource module (reslog.c) do, down to the bytes of each response.

Usage::

    from flux_journal.sim import SimFlux, Workload, ResourceWorkload

    h = SimFlux(jobs=Workload(njobs=1000, seed=1))       # job journal
    h = SimFlux(resources=ResourceWorkload(nnodes=8, nevents=300))
    h = SimFlux.replay("capture.jsonl", topic="job-manager.events-journal")
    h.inject_job("success")                  # live events, from any thread
    host = SimHost(); child = host.start_child(host.root)   # a child instance

This package re-exports the public names of its modules, where each is
documented: :mod:`.handle` (the handle, its futures and timers),
:mod:`.errors` (the error responses services send),
:mod:`.services` (the journal services), :mod:`.replay` (captured
streams), :mod:`.workload` (generated job and resource timelines, with
the job kinds of :mod:`.jobkinds`),
:mod:`.feeder` (live events at a steady rate), :mod:`.nested` (child
instances: jobs that are instances, reachable by URI) and :mod:`.encode` (JSON
as a broker writes it).
"""

# pylint: disable=wildcard-import,unused-wildcard-import
from flux_journal.sim import errors, feeder, handle, nested, replay, services, workload
from flux_journal.sim.encode import dumps
from flux_journal.sim.errors import *  # noqa: F401,F403
from flux_journal.sim.feeder import *  # noqa: F401,F403
from flux_journal.sim.handle import *  # noqa: F401,F403
from flux_journal.sim.nested import *  # noqa: F401,F403
from flux_journal.sim.replay import *  # noqa: F401,F403
from flux_journal.sim.services import *  # noqa: F401,F403
from flux_journal.sim.workload import *  # noqa: F401,F403

__all__ = [
    "dumps",
    *errors.__all__,
    *handle.__all__,
    *nested.__all__,
    *services.__all__,
    *replay.__all__,
    *workload.__all__,
    *feeder.__all__,
]
