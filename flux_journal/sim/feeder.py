"""Live events for a simulated instance, posted at a steady rate.

A :class:`LiveFeeder` makes a :class:`~flux_journal.sim.handle.SimFlux`
look like a running instance: from a thread, it posts one live event (or
one new job's lifecycle) per period to the job or resource journal.
``flux-journal --sim --follow`` reads it.
"""

import random
import sys
import threading

__all__ = ["LiveFeeder", "FEEDER_JOB_KINDS"]

#: Kinds of the jobs a job-journal feeder submits, in proportion:
#: mostly successes, some failures and timeouts.
FEEDER_JOB_KINDS = ("success",) * 8 + ("failed", "timeout")


class LiveFeeder:
    """Post live events to *handle* (a ``SimFlux``) at *rate* per second.

    *journal* is ``"jobs"``: first the rest of the jobs active at the
    snapshot (one event at a time), then new jobs drawn from
    :data:`FEEDER_JOB_KINDS`, each posting its whole lifecycle at once;
    or ``"resource"``: drain and undrain of random ranks of the
    handle's resource workload.  *seed* makes the choices repeatable.

    If posting fails, the thread stops and calls *on_error* with the
    exception (default: one line on stderr), so that the "instance" does
    not go quiet without saying why.
    """

    def __init__(self, handle, journal, rate, seed=0, *, on_error=None):
        if journal not in ("jobs", "resource"):
            raise ValueError(f"unknown journal {journal!r}")
        if not rate > 0:
            raise ValueError("rate must be positive")
        self._handle = handle
        self._journal = journal
        self._period = 1.0 / rate
        self._rng = random.Random(seed)
        self._on_error = on_error if on_error is not None else _report
        self._drained = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-feeder", daemon=True)

    def start(self):
        """Start feeding; return self."""
        self._thread.start()
        return self

    def stop(self):
        """Stop feeding and wait (briefly) for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(1.0)

    def _run(self):
        while not self._stop.wait(self._period):
            try:
                self._post()
            except Exception as exc:  # pylint: disable=broad-except
                self._on_error(exc)
                return

    def _post(self):
        handle = self._handle
        if self._journal == "jobs":
            if handle.jobs.pending_live:
                handle.post_live(1)
            else:
                handle.inject_job(self._rng.choice(FEEDER_JOB_KINDS))
            return
        hosts = handle.resources.workload.hosts
        rank = self._rng.randrange(len(hosts))
        if rank in self._drained:
            self._drained.discard(rank)
            context = {"idset": str(rank), "nodelist": hosts[rank], "overwrite": 0}
            handle.post_resource_event("undrain", context)
        else:
            self._drained.add(rank)
            context = {"idset": str(rank), "nodelist": hosts[rank], "reason": "sim", "overwrite": 0}
            handle.post_resource_event("drain", context)


def _report(exc):
    print(f"simulated live events stopped: {exc}", file=sys.stderr)
