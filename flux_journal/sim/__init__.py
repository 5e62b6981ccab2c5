"""A simulated Flux instance for journal consumers.

``flux_journal.sim`` stands in for a Flux broker wherever flux-journal
runs without one: tests, benchmarks and the command line's default.  It
offers the slice of ``flux.Flux`` that journal consumers use and serves
``job-manager.events-journal`` and ``resource.journal`` the way
flux-core's job-manager (journal.c) and resource module (reslog.c) do,
down to the bytes of each response.

Usage::

    import errno
    from flux_journal._flux import FLUX_RPC_STREAMING, FLUX_RPC_NORESPONSE
    from flux_journal.sim import SimFlux, Workload, ResourceWorkload

    h = SimFlux(jobs=Workload(njobs=1000, seed=1))       # job journal
    h = SimFlux(jobs=Workload(njobs=100_000, live_events=200_000))
    h = SimFlux(resources=ResourceWorkload(nnodes=8, nevents=300))
    h = SimFlux.replay("/work/shared/fixtures/jobs-full.jsonl",
                       topic="job-manager.events-journal")
    h = SimFlux.replay(lines, topic="resource.journal", errors={5: errno.EPERM})

    fut = h.rpc("job-manager.events-journal", {"full": True}, 0, FLUX_RPC_STREAMING)
    while True:
        resp = fut.wait_for(5.0).get()       # {"id":..., "events":[...], ...}
        fut.reset()
        if resp["id"] == -1:
            break                            # end of the backlog
    h.inject_job("success")                  # live events, from any thread
    h.rpc("job-manager.events-journal-cancel",
          {"matchtag": fut.pimpl.get_matchtag()}, 0, FLUX_RPC_NORESPONSE)
    # ...remaining responses, then fut.get() raises OSError(ENODATA)

API summary
-----------
``SimFlux(jobs=None, resources=None, *, services=(), autolive=True, defaults=True)``
    The handle.  *jobs*: a :class:`Workload` (or a
    :class:`JobJournalService`; None = no jobs).  *resources*: a
    :class:`ResourceWorkload` (None = 4 idle brokers).  *services*: more
    or replacement services.  *autolive*: post the workloads' live
    events right after the first request's sentinel.  *defaults*: set
    up the two journal services (else only *services* exist).

    flux.Flux subset: ``rpc(topic, payload=None, nodeid=FLUX_NODEID_ANY,
    flags=0) -> SimFuture``, ``reactor_run(reactor=None, flags=0)``,
    ``reactor_stop(reactor=None)``, ``reactor_stop_error(reactor=None)``,
    ``timer_watcher_create(after, callback, repeat=0.0, args=None)``,
    ``get_reactor()``, ``reactor_running()``.

    Instance control (thread-safe): ``post_live(count=None, *,
    topic=...)``, ``inject_job(kind="success", *, upto=None,
    timestamp=None) -> jobid``, ``post_job_event(jobid, name,
    context=None, *, timestamp=None, jobspec=None, R=None, commit=None)``,
    ``post_resource_event(name, context=None, *, timestamp=None,
    R=None)``, ``end_streams(errnum=ENODATA, errstr=None, *,
    topic=None)``, ``add_service(service)``, ``service(topic)``,
    properties ``jobs`` / ``resources`` (the services).

    ``SimFlux.replay(source, topic="job-manager.events-journal", *,
    end=None, errors=None, hold=None, require_streaming=True)``: a
    handle serving only a capture (path or list of payloads).

``SimFuture``
    ``then(cb, *args, timeout=-1.0, **kwargs)``, ``wait_for(timeout=-1.0)``,
    ``get_str()``, ``get()``, ``reset()``, ``is_ready()``, ``stop()``,
    ``error_string()``, ``get_flux()``, ``pimpl.get_matchtag()``.
    Errors raise ``OSError(errno, message)`` (so PermissionError for
    EPERM, TimeoutError for a wait_for timeout); an error response is
    terminal and stays current.

``Workload(njobs=1000, seed=0, *, rate=20.0, live_jobs=0, live_events=None,
ties=0.0, mix=None, nnodes=4, ncores=2, hostname="vm", users=((0, "alice"),),
owner=0, start=DEFAULT_START)``
    ``now``, ``inactive``, ``active``, ``live``, ``factory``;
    ``history(full=True)`` / ``history_bytes(full=True)`` (raw backlog
    payloads in hash order, no sentinel), ``live_payloads()``,
    ``stream(full=True)``, ``write_jsonl(path, full=True)``,
    ``active_ids()``, ``inactive_ids()``.

``ResourceWorkload(nnodes=4, seed=0, *, ncores=2, nevents=0, live_events=0,
restarts=0, hostname="vm", method="dynamic-discovery", start=DEFAULT_START)``
    ``events``, ``live``, ``R``, ``now``; ``history()``,
    ``live_payloads()``, ``stream()``.

``generate_jobs(njobs, seed=0, *, rate=20.0, start=DEFAULT_START, kinds=None,
**factory_args) -> [GeneratedJob]``
    Complete lifecycles (id, kind, jobspec, R, events as (timestamp,
    name, entry text, committed)); ``JOB_KINDS`` lists the kinds.

Services: ``JobJournalService(workload=None, *, autolive=True)``,
``ResourceJournalService(workload=None, *, journal_max=100000,
autolive=True)``, ``ReplayService(source, topic=..., *, end=None,
errors=None, hold=None, require_streaming=True)`` (``release(count=None)``
sends held lines), all built on ``SimService``.  ``SimError(errnum,
errstr=None)`` is an error response in replay scripts.  Constants:
``JOB_SENTINEL``, ``RESOURCE_SENTINEL``, ``FLUX_REACTOR_NOWAIT``,
``FLUX_REACTOR_ONCE``.  ``encode.dumps`` writes JSON the way jansson
does (``%.17g`` reals).
"""

from flux_journal.sim.encode import dumps
from flux_journal.sim.handle import (
    FLUX_REACTOR_NOWAIT,
    FLUX_REACTOR_ONCE,
    SimError,
    SimFlux,
    SimFuture,
    SimRequest,
    SimTimerWatcher,
)
from flux_journal.sim.replay import ReplayService, read_capture
from flux_journal.sim.services import (
    JOB_SENTINEL,
    RESOURCE_SENTINEL,
    JobJournalService,
    ResourceJournalService,
    SimService,
    hash_order,
)
from flux_journal.sim.workload import (
    DEFAULT_MIX,
    DEFAULT_START,
    JOB_KINDS,
    ActiveJob,
    FluidGenerator,
    GeneratedJob,
    JobFactory,
    ResourceWorkload,
    Workload,
    generate_jobs,
)

__all__ = [
    "SimFlux",
    "SimFuture",
    "SimError",
    "SimRequest",
    "SimTimerWatcher",
    "SimService",
    "JobJournalService",
    "ResourceJournalService",
    "ReplayService",
    "read_capture",
    "Workload",
    "ResourceWorkload",
    "generate_jobs",
    "GeneratedJob",
    "ActiveJob",
    "JobFactory",
    "FluidGenerator",
    "JOB_KINDS",
    "DEFAULT_MIX",
    "DEFAULT_START",
    "JOB_SENTINEL",
    "RESOURCE_SENTINEL",
    "FLUX_REACTOR_NOWAIT",
    "FLUX_REACTOR_ONCE",
    "hash_order",
    "dumps",
]
