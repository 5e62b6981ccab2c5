"""The exporter's counts per instance, for ``metrics --recursive``.

With ``--recursive`` the job-manager journal is read over the whole
hierarchy (:class:`~flux_journal.cli.recursive.TreeFollower`), and each
instance gets a tracker of its own, so that every job series carries
its ``instance`` (the path: ``/``, ``/<f58>``, ...).  The root's
counters survive a reconnection as without ``--recursive``
(:class:`~flux_journal.metrics.carry.CarriedCounters`); a child is never
reconnected to.  Children that could not be read are counted by kind
(``ended``, ``unreachable``, ``denied``, ``lost``).

Memory: a tracker per instance read (its active jobs, plus its counters
and histograms, a few KB); the counters and histograms of a child that
ended stay published (they must not go down), its gauges (jobs per
state, jobs tracked) go with it.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Tuple

from flux_journal.metrics.carry import CarriedCounters
from flux_journal.tree import ROOT, Unreachable

__all__ = ["InstanceCounters"]


class InstanceCounters:
    """One :class:`CarriedCounters` per instance of the tree.

    Args:
        new_tracker: makes a fresh tracker (``JobTracker``)

    Attributes:
        unreachable: kind -> children that could not be read
    """

    def __init__(self, new_tracker: Callable[[], Any]) -> None:
        self._new_tracker = new_tracker
        self._by_path: Dict[str, CarriedCounters] = {ROOT: CarriedCounters(new_tracker())}
        self._live: Dict[str, bool] = {ROOT: True}
        self.unreachable: Counter[str] = Counter()
        # Scrapes copy the dicts from another thread.
        self._lock = threading.Lock()

    @property
    def root(self) -> CarriedCounters:
        """The root instance's counters."""
        return self._by_path[ROOT]

    def consume(self, items: List[Any]) -> None:
        """Feed a batch of TreeEvents to each instance's tracker, each
        instance's events in their order."""
        runs: Dict[str, List[Any]] = {}
        for instance, event in items:
            runs.setdefault(instance, []).append(event)
        for instance, events in runs.items():
            counters = self._by_path.get(instance)
            if counters is None:
                counters = CarriedCounters(self._new_tracker())
                with self._lock:
                    self._by_path[instance] = counters
                    self._live[instance] = True
            counters.consume(events)

    def ended(self, live: List[str]) -> None:
        """Only the instances at *live* paths are still followed."""
        with self._lock:
            alive = set(live)
            for path in self._live:
                self._live[path] = path == ROOT or path in alive

    def report(self, record: Unreachable) -> None:
        """A child could not be read: count it by kind."""
        with self._lock:
            self.unreachable[record.kind] += 1

    def parts(self) -> List[Tuple[str, CarriedCounters, bool]]:
        """(path, counters, still followed) of every instance read."""
        with self._lock:
            return [(path, counters, self._live[path])
                    for path, counters in self._by_path.items()]

    def unreachable_counts(self) -> Dict[str, int]:
        """A copy of :attr:`unreachable`."""
        with self._lock:
            return dict(self.unreachable)

    def reconnected(self, tracker: Any, cursor: Optional[str]) -> None:
        """The root was reconnected to (see
        :meth:`CarriedCounters.reconnected`)."""
        self.root.reconnected(tracker, cursor)
