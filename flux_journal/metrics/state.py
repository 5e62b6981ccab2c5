"""Job states and results from the job-manager journal, for the exporter.

:class:`JobTracker` is a :class:`~flux_journal.jobstate.JobModel`
without details (states, times, results, exceptions: what the exporter
counts) that drops each job's record as it becomes INACTIVE, so memory
grows with active jobs only.  The states and results, and every rule
that decides them, are the model's, which follows flux-core's job-list
(the service behind ``flux jobs``), so that the numbers agree with what
users see there.  On top of the model's counts the tracker keeps queue
and run time histograms and events per name.
"""

from __future__ import annotations

from collections import Counter
from operator import itemgetter
from typing import Any, Dict, List, Optional

from flux_journal.jobstate import (
    CLEANUP,
    DEPEND,
    INACTIVE,
    NEW,
    PRIORITY,
    RESULTS,
    RUN,
    SCHED,
    STATE_NAMES,
    JobModel,
    JobRecord,
)
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
    "JobTracker",
]

_name_of = itemgetter("name")
_timestamp_of = itemgetter("timestamp")


class JobTracker(JobModel):
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
        super().__init__(details=False, drop_inactive=True)
        self.events: Counter[str] = Counter()
        self.queue_seconds = Histogram()
        self.run_seconds = Histogram()
        self.last_timestamp: Optional[float] = None

    def consume(self, events: List[Any]) -> None:
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
        self.apply_events(events)

    def _ran(self, record: JobRecord) -> None:
        self.queue_seconds.observe(max(0.0, record.t_run - record.t_submit))

    def _finished(self, record: JobRecord, timestamp: float) -> None:
        # A job cancelled while running is in CLEANUP already, and its
        # run still ends here; observed once per start.
        if record.t_start is not None:
            self.run_seconds.observe(max(0.0, timestamp - record.t_start))
            record.t_start = None

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
