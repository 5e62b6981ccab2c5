"""Counters that survive a reconnection: each event counted once, never
going down.

After a lost stream the exporter reconnects and reads the returning
instance's whole history again, into a fresh tracker: its gauges (jobs
per state, ranks) are rebuilt from that history, whatever happened
while it was away.  Its counters (events per name, finished jobs per
result, histograms, errors) would count again every event seen before
the loss.  :class:`CarriedCounters` publishes, per counter, what earlier
connections counted plus what the current tracker counted for events
after the cursor where the stream was lost; what the tracker counted
for events at or before that cursor is set aside.

A counter is keyed ``(family, label)``: ``("events", name)``,
``("errors", kind)``, ``("results", result)``, and for each histogram
``(name, bucket index)`` and ``(name, "sum")``.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Hashable, List, Optional, Tuple

from flux_journal.consumer.resume import ResumePoint

__all__ = ["CarriedCounters", "Counts", "HISTOGRAMS", "counter_values"]

#: The tracker attributes holding histograms (job trackers only).
HISTOGRAMS = ("queue_seconds", "run_seconds")

#: Counter values keyed (family, label).
Counts = Dict[Tuple[str, Hashable], float]


def counter_values(tracker: Any) -> Counts:
    """Every counter of *tracker* (a JobTracker or RankTracker), keyed
    ``(family, label)``."""
    counts: Counts = {}
    for family in ("events", "errors", "results"):
        for label, value in dict(getattr(tracker, family, {})).items():
            counts[family, label] = value
    for name in HISTOGRAMS:
        histogram = getattr(tracker, name, None)
        if histogram is not None:
            for index, value in enumerate(list(histogram.counts)):
                counts[name, index] = value
            counts[name, "sum"] = histogram.total
    return counts


def _add(into: Counts, counts: Counts, sign: int = 1) -> None:
    for key, value in counts.items():
        into[key] = into.get(key, 0) + sign * value


class CarriedCounters:
    """The counters of a journal read over one or more connections.

    :meth:`consume` feeds events to the current tracker;
    :meth:`reconnected` starts a new tracker for a new connection that
    reads the history again, resuming the counts after *cursor*;
    :meth:`values` is what to publish.  Scrapes may call :meth:`values`
    from another thread.
    """

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self._carried: Counts = {}  # counted over earlier connections
        self._skipped: Counts = {}  # counted by this tracker before the cursor
        self._seen: Optional[ResumePoint] = None  # events already counted
        self._watermark = 0.0
        self._newest = 0.0
        # Held while the tracker counts events already counted and the
        # count is set aside, and while values() reads: a scrape never
        # sees them counted twice.
        self._lock = threading.Lock()

    def reconnected(self, tracker: Any, cursor: Optional[str]) -> None:
        """A new connection: *tracker* (fresh) reads its history; events
        at or before *cursor* (None: nothing was consumed) were counted."""
        with self._lock:
            self._carried = self._values()
            self._skipped = {}
            self.tracker = tracker
            self._seen = None
            if cursor is not None:
                self._seen = ResumePoint(cursor, None, True)
                assert self._seen.skip is not None
                self._watermark, self._newest = self._seen.skip[0], self._seen.skip[1]

    def _counted(self, event: Any) -> bool:
        """Whether *event* was counted before the cursor."""
        timestamp = event.timestamp
        if timestamp < self._watermark:
            return True
        if timestamp > self._newest:
            return False
        assert self._seen is not None
        return not self._seen.link_tie(event, None)

    def consume(self, events: List[Any]) -> None:
        """Feed a batch of events (no sentinel, no None) to the tracker."""
        if self._seen is None:
            self.tracker.consume(events)
            return
        # Runs of events counted before or not, in stream order.
        start = 0
        counted = self._counted(events[0]) if events else False
        for index in range(1, len(events) + 1):
            if index < len(events) and self._counted(events[index]) == counted:
                continue
            run = events[start:index]
            if counted:
                with self._lock:
                    before = counter_values(self.tracker)
                    self.tracker.consume(run)
                    _add(self._skipped, counter_values(self.tracker))
                    _add(self._skipped, before, -1)
            else:
                self.tracker.consume(run)
            if index < len(events):
                start, counted = index, not counted

    def count_error(self, kind: str) -> None:
        """Count an error of *kind* (a malformed response) once."""
        self.tracker.count_error(kind)

    def _values(self) -> Counts:
        counts = dict(self._carried)
        _add(counts, counter_values(self.tracker))
        _add(counts, self._skipped, -1)
        return counts

    def values(self) -> Counts:
        """The counters to publish."""
        with self._lock:
            return self._values()
