"""Job states and results from the job-manager journal (RFC 21).

:class:`JobTracker` applies job events, in the order the journal
delivers them, to a small record per job, and keeps the counts the
exporter publishes: jobs per state, finished jobs per result, queue and
run time histograms, events per name and errors per kind.

State changes follow flux-core's job-list module, the service behind
``flux jobs``, so that the numbers agree with what users see there:

- ``submit`` creates the job in NEW; ``validate`` moves it to DEPEND,
  ``depend`` to PRIORITY, ``alloc`` to RUN, ``finish`` to CLEANUP,
  ``clean`` to INACTIVE; ``invalidate`` forgets the job.
- ``priority`` moves a job in PRIORITY to SCHED (a priority change of a
  job already scheduled changes nothing); ``urgency``, ``jobspec-update``
  and ``flux-restart`` move a job in SCHED back to PRIORITY.
- an ``exception`` of severity 0 moves the job to CLEANUP.
- a state other than PRIORITY and SCHED is entered at most once: a
  second ``finish`` or fatal exception changes nothing.

A job's result, decided when it becomes INACTIVE: COMPLETED if it
finished with status 0 and no fatal (severity 0) exception had been
raised by then; otherwise, by the type of its most severe exception
(the first of them), CANCELED for ``cancel``, TIMEOUT for ``timeout``;
otherwise FAILED (a non-zero status, or any other exception).

A job's record is dropped when it becomes INACTIVE, so memory grows with
active jobs only.  Events the tracker cannot use (unknown job, unknown
name, a context without the fields the event needs, an event dated
before the job's previous one) are counted in :attr:`JobTracker.errors`
and otherwise ignored.
"""

from __future__ import annotations

from collections import Counter
from operator import itemgetter
from typing import Any, Callable, Dict, List, Optional, Tuple

from flux_journal.metrics.histogram import Histogram

__all__ = [
    "NEW",
    "DEPEND",
    "PRIORITY",
    "SCHED",
    "RUN",
    "CLEANUP",
    "INACTIVE",
    "STATE_NAMES",
    "RESULTS",
    "Job",
    "JobTracker",
    "result_of",
]

# States, in RFC 21's order; bits so that a set of states is an int.
NEW = 1
DEPEND = 2
PRIORITY = 4
SCHED = 8
RUN = 16
CLEANUP = 32
INACTIVE = 64

#: State -> the name ``flux jobs`` (and the ``state`` label) uses.
STATE_NAMES: Dict[int, str] = {
    NEW: "NEW",
    DEPEND: "DEPEND",
    PRIORITY: "PRIORITY",
    SCHED: "SCHED",
    RUN: "RUN",
    CLEANUP: "CLEANUP",
    INACTIVE: "INACTIVE",
}

#: The results of finished jobs (the ``result`` label).
RESULTS: Tuple[str, ...] = ("COMPLETED", "FAILED", "CANCELED", "TIMEOUT")

# States that may be entered again; any other is entered at most once.
_REENTERABLE = PRIORITY | SCHED

# Names of job events that change no state or count here (RFC 21, and
# flux-core's job manager), and prefixes of families of such names.
_INERT_NAMES = frozenset(
    (
        "start",
        "release",
        "free",
        "set-flags",
        "resource-update",
        "memo",
        "annotations",
        "dependency-add",
        "dependency-remove",
    )
)
_INERT_PREFIXES = ("prolog-", "epilog-", "debug", "dependency-")

_name_of = itemgetter("name")
_timestamp_of = itemgetter("timestamp")


class Job:
    """What the tracker remembers of one active job.

    Attributes:
        state: one of NEW ... CLEANUP
        entered: the states entered so far (bits)
        submitted: timestamp of ``submit``
        started: timestamp of ``start``, until its run time is observed
        last: timestamp of the job's latest event
        severity: severity of the most severe exception so far, or None
        exception_type: the type of that exception
        success: finished with status 0 and no fatal exception by then
    """

    __slots__ = ("state", "entered", "submitted", "started", "last", "severity",
                 "exception_type", "success")

    def __init__(self, submitted: float) -> None:
        self.state = NEW
        self.entered = NEW
        self.submitted = submitted
        self.started: Optional[float] = None
        self.last = submitted
        self.severity: Optional[int] = None
        self.exception_type = ""
        self.success = False


def result_of(job: Job) -> str:
    """The result of *job* as flux-core's job-list decides it when the
    job becomes inactive."""
    if job.success:
        return "COMPLETED"
    if job.severity is not None:
        if job.exception_type == "cancel":
            return "CANCELED"
        if job.exception_type == "timeout":
            return "TIMEOUT"
    return "FAILED"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class JobTracker:
    """Counts kept from the job-manager journal's events.

    Feed it lists of :class:`~flux_journal.job.JournalEvent` with
    :meth:`consume`.  Every attribute below is a plain value or container
    that another thread may read (copying containers) while events are
    consumed.

    Attributes:
        events: event name -> events consumed
        states: state -> jobs now in that state (INACTIVE: jobs that
            became inactive)
        results: result -> jobs that finished with it
        queue_seconds: submit -> alloc durations
        run_seconds: start -> finish durations
        errors: kind -> events that could not be used (``unknown_job``,
            ``unknown_event``, ``bad_context``, ``out_of_order``)
        last_timestamp: timestamp of the latest event consumed, or None
    """

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.states: Dict[int, int] = dict.fromkeys(STATE_NAMES, 0)
        self.results: Dict[str, int] = dict.fromkeys(RESULTS, 0)
        self.queue_seconds = Histogram()
        self.run_seconds = Histogram()
        self.errors: Dict[str, int] = {}
        self.last_timestamp: Optional[float] = None
        self._jobs: Dict[int, Job] = {}
        self._handlers: Dict[str, Callable[[Job, Dict[str, Any]], None]] = {
            "validate": self._validate,
            "depend": self._depend,
            "priority": self._priority,
            "alloc": self._alloc,
            "start": self._start,
            "finish": self._finish,
            "clean": self._clean,
            "exception": self._exception,
            "urgency": self._revert,
            "jobspec-update": self._revert,
            "flux-restart": self._revert,
        }

    @property
    def active(self) -> int:
        """Jobs whose record is held (not yet inactive)."""
        return len(self._jobs)

    def count_error(self, kind: str, count: int = 1) -> None:
        """Add *count* to the error counter *kind*."""
        self.errors[kind] = self.errors.get(kind, 0) + count

    def consume(self, events: List[Dict[str, Any]]) -> None:
        """Apply a batch of job events, in stream order (no sentinel, no
        None)."""
        if not events:
            return
        # Counted and dated per batch, in C: the loop below is the
        # exporter's whole per-event cost.
        self.events.update(map(_name_of, events))
        latest = max(map(_timestamp_of, events))
        if self.last_timestamp is None or latest > self.last_timestamp:
            self.last_timestamp = latest
        jobs = self._jobs
        handlers = self._handlers
        for event in events:
            name = event["name"]
            jobid = event.jobid  # type: ignore[attr-defined]
            job = jobs.get(jobid)
            if job is None:
                if name == "submit":
                    jobs[jobid] = Job(event["timestamp"])
                    self.states[NEW] += 1
                else:
                    self.count_error("unknown_job")
                continue
            timestamp = event["timestamp"]
            if timestamp < job.last:
                self.count_error("out_of_order")
            else:
                job.last = timestamp
            handler = handlers.get(name)
            if handler is None:
                if name in _INERT_NAMES:
                    continue
                if name == "invalidate":
                    self.states[job.state] -= 1
                    del jobs[jobid]
                elif name == "submit":
                    job.submitted = timestamp
                elif not name.startswith(_INERT_PREFIXES):
                    self.count_error("unknown_event")
                continue
            try:
                handler(job, event)
            except (AttributeError, TypeError):  # a context that is no object
                self.count_error("bad_context")

    # -- transitions ---------------------------------------------------

    def _enter(self, job: Job, state: int) -> bool:
        """Move *job* to *state* unless it was entered before (PRIORITY
        and SCHED may be entered again); return whether it moved."""
        if job.entered & state and not state & _REENTERABLE:
            return False
        job.entered |= state
        states = self.states
        states[job.state] -= 1
        states[state] += 1
        job.state = state
        return True

    def _validate(self, job: Job, event: Dict[str, Any]) -> None:
        self._enter(job, DEPEND)

    def _depend(self, job: Job, event: Dict[str, Any]) -> None:
        self._enter(job, PRIORITY)

    def _priority(self, job: Job, event: Dict[str, Any]) -> None:
        if not _is_int(event["context"].get("priority")):
            self.count_error("bad_context")
        elif job.state == PRIORITY:
            self._enter(job, SCHED)

    def _revert(self, job: Job, event: Dict[str, Any]) -> None:
        if job.state == SCHED:
            self._enter(job, PRIORITY)

    def _alloc(self, job: Job, event: Dict[str, Any]) -> None:
        if self._enter(job, RUN):
            self.queue_seconds.observe(max(0.0, event["timestamp"] - job.submitted))

    def _start(self, job: Job, event: Dict[str, Any]) -> None:
        job.started = event["timestamp"]

    def _finish(self, job: Job, event: Dict[str, Any]) -> None:
        status = event["context"].get("status")
        if not _is_int(status):
            self.count_error("bad_context")
            return
        if status == 0 and job.severity != 0:
            job.success = True
        self._enter(job, CLEANUP)
        # A job cancelled while running is in CLEANUP already, and its
        # run still ends here; observed once per start.
        if job.started is not None:
            self.run_seconds.observe(max(0.0, event["timestamp"] - job.started))
            job.started = None

    def _exception(self, job: Job, event: Dict[str, Any]) -> None:
        context = event["context"]
        kind = context.get("type")
        severity = context.get("severity")
        if not isinstance(kind, str) or not _is_int(severity):
            self.count_error("bad_context")
            return
        if job.severity is None or severity < job.severity:
            job.severity = severity
            job.exception_type = kind
        if severity == 0:
            self._enter(job, CLEANUP)

    def _clean(self, job: Job, event: Dict[str, Any]) -> None:
        if self._enter(job, INACTIVE):
            self.results[result_of(job)] += 1
        # Inactive jobs are only counted: the record goes.
        del self._jobs[event.jobid]  # type: ignore[attr-defined]

    # -- reading -------------------------------------------------------

    def snapshot(self) -> Dict[str, Any]:
        """Copies of the job counts (states by name, results, histograms
        as ``Histogram.cumulative()``, active jobs), safe to take while
        events are consumed."""
        return {
            "states": {STATE_NAMES[s]: n for s, n in self.states.copy().items()},
            "results": self.results.copy(),
            "queue_seconds": self.queue_seconds.cumulative(),
            "run_seconds": self.run_seconds.cumulative(),
            "active": self.active,
        }
